/* The lab responder's rule (bpf/responder.bpf.c); src/io/responder.rs mirrors it: keep in sync. */
#ifndef XDPSCAN_RESPONDER_H
#define XDPSCAN_RESPONDER_H

#define RESPONDER_OPEN     0
#define RESPONDER_CLOSED   1
#define RESPONDER_SILENT   2
#define RESPONDER_COUNTERS 3

/* What (address, port) answers: the address's last 32 bits in host order, the port. A quarter
 * of the pairs are open, five eighths closed, one eighth silent. */
static __always_inline __u32 responder_rule(__u32 addr, __u16 port)
{
	__u32 h = addr * 0x9e3779b1u ^ (__u32)port * 0x85ebca6bu;
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	switch (h & 7) {
	case 0:
	case 1:
		return RESPONDER_OPEN;
	case 7:
		return RESPONDER_SILENT;
	default:
		return RESPONDER_CLOSED;
	}
}

#endif
