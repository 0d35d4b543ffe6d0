/* The device, built for a POSIX host: serves the serial protocol on a pseudo-terminal
 * (for tests and bring-up without hardware) or on a serial port.
 *
 *   edgesnn-device          open a pty, print its path as the first line of stdout
 *   edgesnn-device TTY      serve on TTY (raw, 8N1, 115200 baud)
 *
 * Runs until killed or until the TTY hangs up. STATS cycles are nanoseconds here.
 */
#define _XOPEN_SOURCE 600 /* posix_openpt, grantpt, unlockpt, ptsname, clock_gettime */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

static int port = -1;

void platform_write(const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(port, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("edgesnn-device: write");
            exit(1);
        }
        data += n;
        len -= (size_t)n;
    }
}

uint32_t device_cycles(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

/* Raw 8-bit bytes: no echo, no line editing, no CR/LF or flow-control translation, which
 * would otherwise eat or alter frame bytes. (cfmakeraw does this but is not POSIX.) */
static int make_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0)
        return -1;
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL |
                             IXON | IXOFF);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB);
    t.c_cflag |= CS8 | CREAD | CLOCAL;
    t.c_cc[VMIN] = 1; /* block until at least one byte */
    t.c_cc[VTIME] = 0;
    if (cfsetispeed(&t, B115200) != 0 || cfsetospeed(&t, B115200) != 0)
        return -1;
    return tcsetattr(fd, TCSANOW, &t);
}

/* A new pty: returns the master and prints the slave's path for the host to open. */
static int open_pty(void)
{
    const char *name;
    int slave;
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
        return -1;
    name = ptsname(master);
    if (name == NULL)
        return -1;
    /* Held open for the life of the process: with no slave open, reads on the master fail
     * (EIO) between one host closing the port and the next opening it. */
    slave = open(name, O_RDWR | O_NOCTTY);
    if (slave < 0 || make_raw(slave) != 0)
        return -1;
    printf("%s\n", name);
    fflush(stdout);
    return master;
}

int main(int argc, char **argv)
{
    uint8_t buf[256];
    if (argc > 2) {
        fprintf(stderr, "usage: %s [TTY]\n", argv[0]);
        return 2;
    }
    if (argc == 2) {
        port = open(argv[1], O_RDWR | O_NOCTTY);
        if (port >= 0 && make_raw(port) != 0)
            port = -1;
    } else {
        port = open_pty();
    }
    if (port < 0) {
        perror("edgesnn-device: opening the port");
        return 1;
    }
    protocol_init();
    for (;;) {
        ssize_t i, n = read(port, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("edgesnn-device: read");
            return 1;
        }
        if (n == 0)
            return 0; /* the TTY hung up */
        for (i = 0; i < n; i++)
            protocol_feed(buf[i]);
    }
}
