"""Training the L2MU with PyTorch (extra ``train``): BPTT through the same equations the
runtime executes, with an arctan surrogate gradient for the spike.

The robust recipe (specs/l2mu.md measured the published one spreading 22–97 %):

- inputs z-scored with statistics stored in the model (folded into the encoder);
- a readout whose logits do not grow with the window length (mean leaky-integrator
  membrane, initialised so that initial logits are O(1));
- gradients flow back in time through every membrane and synaptic current, but not
  through the recurrent *spike* edges (s_h, s_m of the previous step): through the
  LMU memory (Ā has eigenvalues near 1) and the surrogate derivative those paths
  explode — gradient norms of 10⁹ were measured on BasicMotions, which no clipping
  rescues. ``full_bptt=True`` keeps them;
- a small learning rate for the spiking layers (3e-4) and a large one for the
  readout (1e-2): the initial encoder/memory/hidden spikes already separate the
  classes (a linear readout of their rates scores 100 % on BasicMotions), and moving
  them fast overfits 32 training windows; measured on BasicMotions, one learning rate
  of 3e-3 for all gave 95–100 % across seeds, the split one 100 % on every seed tried;
- gradient-norm clipping, a cosine learning-rate schedule, and early stopping on
  validation loss with the best weights restored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgesnn.errors import require
from edgesnn.models.l2mu import L2MUConfig, init_params, lmu_matrices

torch = require("torch", "train")

TRAINABLE = ("enc_weight", "enc_bias", "e_x", "e_h", "e_m", "w_x", "w_h", "w_m",
             "ro_weight", "ro_bias")
ATAN_ALPHA = 2.0  # snnTorch's default arctan surrogate width


class _ArctanSpike(torch.autograd.Function):
    """Heaviside forward; derivative of (1/π)·arctan(π/2·α·x) backward (snnTorch's ATan)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (ATAN_ALPHA / 2) / (1 + (math.pi / 2 * ATAN_ALPHA * x) ** 2)


def _lif(v, current, beta, threshold):
    fired = (v > threshold).to(v.dtype).detach()  # S_{t-1}: reset is not differentiated
    v = beta * v + current - fired * threshold
    return _ArctanSpike.apply(v - threshold), v


class L2MUNet(torch.nn.Module):
    """The L2MU step loop in torch, parameter for parameter the graph of build_graph."""

    def __init__(self, cfg: L2MUConfig, params: dict[str, np.ndarray],
                 learn_beta: bool = False, learn_threshold: bool = False,
                 detach_recurrent: bool = False):
        super().__init__()
        self.cfg = cfg
        self.detach_recurrent = detach_recurrent
        for name, value in params.items():
            learn = (name in TRAINABLE or (learn_beta and name.endswith(("_beta", "_alpha")))
                     or (learn_threshold and name.endswith("_threshold")))
            tensor = torch.tensor(np.asarray(value, dtype=np.float32))
            if learn:
                self.register_parameter(name, torch.nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor)
        a_bar, b_bar = lmu_matrices(cfg.order, cfg.theta)
        self.register_buffer("a_bar", torch.tensor(a_bar, dtype=torch.float32))
        self.register_buffer("b_bar", torch.tensor(b_bar, dtype=torch.float32))

    def _neuron(self, pop: str, state: dict, current):
        if self.cfg.variant == "synaptic":
            current = getattr(self, f"{pop}_alpha") * state[pop + ".i"] + current
            state[pop + ".i"] = current
        s, state[pop] = _lif(state[pop], current, getattr(self, f"{pop}_beta"),
                             getattr(self, f"{pop}_threshold"))
        return s

    def init_state(self, batch: int) -> dict:
        cfg = self.cfg
        sizes = {"enc": cfg.channels * cfg.population, "u": cfg.memory,
                 "m": cfg.memory * cfg.order, "h": cfg.hidden, "out": cfg.classes}
        state = {k: torch.zeros(batch, n) for k, n in sizes.items()}
        if cfg.variant == "synaptic":
            state.update({k + ".i": torch.zeros(batch, sizes[k]) for k in ("u", "m", "h")})
        state["s_h"] = torch.zeros(batch, cfg.hidden)  # previous spikes (recurrent edges)
        state["s_m"] = torch.zeros(batch, cfg.memory * cfg.order)
        return state

    def step(self, state: dict, x_t):
        """One step on raw inputs (batch, channels) → (readout output, new state)."""
        cfg = self.cfg
        b, m, d = x_t.shape[0], cfg.memory, cfg.order
        state = dict(state)
        gain = self.enc_weight / self.norm_std[:, None]
        bias = (self.enc_bias - gain * self.norm_mean[:, None]).reshape(-1)
        enc_current = x_t.repeat_interleave(cfg.population, dim=-1) * gain.reshape(-1) + bias
        s_x, state["enc"] = _lif(state["enc"], enc_current, self.enc_beta, self.enc_threshold)
        s_h, s_m = state["s_h"], state["s_m"]
        if self.detach_recurrent:
            s_h, s_m = s_h.detach(), s_m.detach()
        s_u = self._neuron("u", state, s_x @ self.e_x.T + s_h @ self.e_h.T + s_m @ self.e_m.T)
        mem_current = ((s_m.reshape(b, m, d) @ self.a_bar.T).reshape(b, m * d)
                       + (s_u[:, :, None] * self.b_bar).reshape(b, m * d))
        state["s_m"] = self._neuron("m", state, mem_current)
        state["s_h"] = self._neuron("h", state, s_x @ self.w_x.T + s_h @ self.w_h.T
                                    + state["s_m"] @ self.w_m.T)
        ro_current = state["s_h"] @ self.ro_weight.T + self.ro_bias
        if cfg.readout == "li":
            state["out"] = self.ro_beta * state["out"] + ro_current
            return state["out"], state
        spikes, state["out"] = _lif(state["out"], ro_current, self.ro_beta, self.ro_threshold)
        return spikes, state

    def forward(self, x):
        """(batch, T, channels) raw inputs → (batch, T, classes) readout outputs."""
        state = self.init_state(x.shape[0])
        outputs = []
        for t in range(x.shape[1]):
            y, state = self.step(state, x[:, t])
            outputs.append(y)
        return torch.stack(outputs, dim=1)

    def logits(self, outputs):
        scale = 1.0 if self.cfg.readout == "li" else self.cfg.logit_scale
        return outputs.mean(dim=1) * scale

    @torch.no_grad()
    def project(self) -> None:
        """Keep learnable decays in [0, 1] and thresholds positive after each update."""
        for name, p in self.named_parameters():
            if name.endswith(("_beta", "_alpha")):
                p.clamp_(0.0, 1.0)
            elif name.endswith("_threshold"):
                p.clamp_(min=1e-3)

    def export(self) -> dict[str, np.ndarray]:
        skip = {"a_bar", "b_bar"}
        return {name: t.detach().cpu().numpy().astype(np.float32).copy()
                for name, t in list(self.named_parameters()) + list(self.named_buffers())
                if name not in skip}


def torch_stepper(model) -> tuple[Callable[[], None], Callable[[np.ndarray], None]]:
    """(reset, step) running a trained L2MU model file in PyTorch one sample at a time
    (one thread, no grad), for latency comparisons."""
    from edgesnn.models.l2mu import params_from_graph

    meta = {k: v for k, v in model.metadata["l2mu"].items() if k != "family"}
    cfg = L2MUConfig(**meta)
    net = L2MUNet(cfg, params_from_graph(cfg, model.graph)).eval()
    torch.set_num_threads(1)
    state = {"s": None}

    def reset() -> None:
        state["s"] = net.init_state(1)

    @torch.no_grad()
    def step(sample: np.ndarray) -> None:
        _, state["s"] = net.step(state["s"], torch.from_numpy(np.asarray(sample, np.float32)[None]))

    reset()
    return reset, step


@dataclass
class TrainResult:
    params: dict[str, np.ndarray]
    best_epoch: int
    history: list[dict] = field(default_factory=list)


def train_l2mu(cfg: L2MUConfig, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
               y_val: np.ndarray, epochs: int = 150, lr: float = 3e-4, batch_size: int = 32,
               patience: int = 40, seed: int = 0, learn_beta: bool = False,
               learn_threshold: bool = False, full_bptt: bool = False,
               readout_lr: float | None = 1e-2, progress: bool = True) -> TrainResult:
    """BPTT with Adam on cross-entropy of the window logits; returns the weights of the
    epoch with the lowest validation loss. Seeded: the same inputs give the same weights.
    ``readout_lr`` is the readout's learning rate (None: ``lr`` for everything)."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    params = init_params(cfg, seed)
    params["norm_mean"] = x_train.mean(axis=(0, 1)).astype(np.float32)
    params["norm_std"] = np.maximum(x_train.std(axis=(0, 1)), 1e-3).astype(np.float32)
    net = L2MUNet(cfg, params, learn_beta, learn_threshold, detach_recurrent=not full_bptt)
    readout = [p for n, p in net.named_parameters() if n.startswith("ro_")]
    rest = [p for n, p in net.named_parameters() if not n.startswith("ro_")]
    opt = torch.optim.Adam([{"params": readout, "lr": readout_lr or lr},
                            {"params": rest, "lr": lr}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    xt, yt = torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train, dtype=torch.long)
    xv, yv = torch.tensor(x_val, dtype=torch.float32), torch.tensor(y_val, dtype=torch.long)
    loss_fn = torch.nn.CrossEntropyLoss()
    best = (math.inf, 0, net.export())
    history = []
    bar = tqdm(range(epochs), desc="training L2MU", unit="epoch", disable=not progress)
    for epoch in bar:
        net.train()
        order = rng.permutation(len(xt))
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = torch.as_tensor(order[start:start + batch_size])
            loss = loss_fn(net.logits(net(xt[idx])), yt[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            net.project()
            total += loss.item() * len(idx)
        sched.step()
        net.eval()
        with torch.no_grad():
            val_logits = net.logits(net(xv))
            val_loss = float(loss_fn(val_logits, yv))
            val_acc = float((val_logits.argmax(1) == yv).float().mean())
        history.append({"epoch": epoch, "train_loss": total / len(xt), "val_loss": val_loss,
                        "val_accuracy": val_acc})
        if val_loss < best[0]:
            best = (val_loss, epoch, net.export())
        bar.set_postfix(loss=f"{total / len(xt):.3f}", val_loss=f"{val_loss:.3f}",
                        val_acc=f"{val_acc:.2f}")
        if epoch - best[1] >= patience:
            break
    bar.close()
    return TrainResult(params=best[2], best_epoch=best[1], history=history)
