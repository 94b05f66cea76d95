/* The lab responder's rule (bpf/responder.bpf.c); src/io/responder.rs mirrors it: keep in sync. */
#ifndef XDPSCAN_RESPONDER_H
#define XDPSCAN_RESPONDER_H

#define RESPONDER_OPEN     0
#define RESPONDER_CLOSED   1
#define RESPONDER_SILENT   2
#define RESPONDER_UNREACH  3
/* Counter only: answers sent twice (RESPONDER_TWICE, when repeating is on). */
#define RESPONDER_REPEATED 4
#define RESPONDER_COUNTERS 5

/* Flag on an answer the responder sends twice when repeating is on: a quarter of them, as a
 * retransmitting server or a duplicating network would. */
#define RESPONDER_TWICE    (1u << 16)

/* How many ICMP unreachable codes the rule picks from (responder_code4/6). */
#define RESPONDER_CODES 7

/* What (address, port) answers: the address's last 32 bits in host order, the port. A quarter
 * of the pairs are open, half closed, an eighth ICMP unreachable and an eighth silent. The low
 * byte is the kind; for RESPONDER_UNREACH the next byte picks the code (0..RESPONDER_CODES);
 * any answer may carry RESPONDER_TWICE. */
static __always_inline __u32 responder_rule(__u32 addr, __u16 port)
{
	__u32 h = addr * 0x9e3779b1u ^ (__u32)port * 0x85ebca6bu;
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	__u32 twice = ((h >> 20) & 3) == 0 ? RESPONDER_TWICE : 0;
	switch (h & 15) {
	case 0 ... 3:
		return RESPONDER_OPEN | twice;
	case 12 ... 13:
		return RESPONDER_UNREACH | (((h >> 4) % RESPONDER_CODES) << 8) | twice;
	case 14 ... 15:
		return RESPONDER_SILENT;
	default:
		return RESPONDER_CLOSED | twice;
	}
}

/* ICMP destination unreachable codes: network, host, protocol, port, network and host
 * administratively prohibited, communication administratively prohibited. */
static __always_inline __u8 responder_code4(__u32 i)
{
	switch (i) {
	case 4:
		return 9;
	case 5:
		return 10;
	case 6:
		return 13;
	default:
		return i;
	}
}

/* ICMPv6 destination unreachable codes 0 to 6: no route, administratively prohibited, beyond
 * the source's scope, address unreachable, port unreachable, source policy, reject route. */
static __always_inline __u8 responder_code6(__u32 i)
{
	return i;
}

#endif
