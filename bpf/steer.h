/* Shared between bpf/steer.bpf.c and src/io/xdp.rs (struct SteerConfig): keep in sync. */
#ifndef XDPSCAN_STEER_H
#define XDPSCAN_STEER_H

/* Steer ICMP echo replies whose identifier lies in the port range (ping sweeps). */
#define STEER_ECHO_REPLY   (1u << 0)
/* Steer ICMP errors quoting any protocol from our address, not only TCP/UDP (-sO). */
#define STEER_ANY_QUOTED   (1u << 1)
/* Steer IPv4 packets to us of the protocols in `protos`, and ICMP errors quoting them (-sO). */
#define STEER_ALL_PROTOS   (1u << 2)
/* Steer ICMP query replies (echo, timestamp, information, address mask) whose identifier
 * lies in the port range (`xdpscan probe --icmp-type`). */
#define STEER_ICMP_QUERY   (1u << 3)

/* The scan has an IPv4 source (src_ip) / an IPv6 source (src_ip6). */
#define STEER_HAS_V4       (1u << 8)
#define STEER_HAS_V6       (1u << 9)
/* The interface carries bare IP packets (tun, WireGuard, ipip, GRE): no Ethernet header on the
 * wire. A steered packet gets a made-up one, so user space reads Ethernet frames everywhere. */
#define STEER_BARE_IP      (1u << 10)

struct steer_config {
	__u32 src_ip;   /* network byte order */
	__u16 port_lo;  /* host byte order, inclusive */
	__u16 port_hi;  /* host byte order, inclusive */
	__u32 flags;
	__u8 src_ip6[16]; /* network byte order */
	__u8 protos[32];  /* -sO: the protocol numbers scanned, bit p % 8 of byte p / 8 */
	__u32 src_count;  /* host byte order: the source pool's size (1: one address); the pool
			   * is src_ip / src_ip6 and the addresses after it, the last word only */
};

#endif
