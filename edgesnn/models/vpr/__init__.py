"""Visual place recognition with ensembles of compact, region-specific SNN modules."""
