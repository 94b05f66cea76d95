// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Steers the replies to a scan into AF_XDP sockets so the local kernel never sees them
 * (and so never answers a SYN-ACK with a RST). A packet of either family is ours when it is
 * addressed to the scan's source address of that family and either
 *   - is TCP/UDP to the scan's source-port range, or
 *   - is an ICMP (ICMPv6) error whose quoted header is a packet we sent (our source address,
 *     port range), or
 *   - (flag) is an ICMP echo reply (or, with another flag, any ICMP query reply) whose
 *     identifier lies in the port range.
 * IPv6 extension headers (hop-by-hop, routing, fragment, destination options, AH) are walked,
 * up to MAX_EXT_HEADERS of them; a later fragment (of either family) carries no upper-layer
 * header and is passed.
 * Neighbour discovery (ICMPv6 133-137) always goes to the kernel, so the host's own IPv6 keeps
 * working during a scan. Everything else is passed to the kernel untouched. With no socket on the receiving queue the
 * packet is dropped, never passed: the port range belongs to the scan alone.
 * On a link with no link header (STEER_BARE_IP: tun, WireGuard, ipip, GRE) the packet starts with
 * its IP header; a steered one gets a made-up Ethernet header, so user space parses one layout.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "steer.h"

/* linux/icmp.h drags in libc headers that do not build for the bpf target. */
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 sequence;
};
#define ICMP_ECHOREPLY      0
#define ICMP_DEST_UNREACH   3
#define ICMP_SOURCE_QUENCH  4
#define ICMP_REDIRECT       5
#define ICMP_TIME_EXCEEDED  11
#define ICMP_PARAMETERPROB  12
#define ICMP_TIMESTAMPREPLY 14
#define ICMP_INFO_REPLY     16
#define ICMP_ADDRESSREPLY   18

#define ICMPV6_DEST_UNREACH   1
#define ICMPV6_PARAMPROB      4
#define ICMPV6_ECHO_REPLY     129
#define ICMPV6_NDP_FIRST      133
#define ICMPV6_NDP_LAST       137

#define NEXTHDR_HOP       0
#define NEXTHDR_ROUTING   43
#define NEXTHDR_FRAGMENT  44
#define NEXTHDR_AUTH      51
#define NEXTHDR_ICMPV6    58
#define NEXTHDR_DEST      60
#define MAX_EXT_HEADERS   8

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

static __always_inline int in_range(const struct steer_config *cfg, __u16 port_be)
{
	__u16 p = bpf_ntohs(port_be);
	return p >= cfg->port_lo && p <= cfg->port_hi;
}

/* Is protocol `p` one that -sO scans? */
static __always_inline int scanned_proto(const struct steer_config *cfg, __u8 p)
{
	if (!(cfg->flags & STEER_ALL_PROTOS))
		return 0;
	return (cfg->protos[(p >> 3) & 31] >> (p & 7)) & 1;
}

/* Is this quoted layer-4 header (protocol `proto`) one of our probes? TCP, UDP, SCTP: from one of
 * our source ports. ICMP: a query (echo, timestamp, information, address mask; ICMPv6 echo)
 * whose identifier is one of them, when the scan sends such queries. Any other protocol: one
 * that -sO scans (it has no ports; the engine checks the cookie in the quoted IP id). Everything else is the host's own traffic (frag-needed for its
 * connections, above all): the kernel's. */
static __always_inline int quoted_probe(const struct steer_config *cfg, __u8 proto, void *l4,
					void *end)
{
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) {
		__u16 *sport = l4;
		if ((void *)(sport + 1) > end)
			return 0;
		return in_range(cfg, *sport);
	}
	if (proto == IPPROTO_ICMP || proto == NEXTHDR_ICMPV6) {
		struct icmphdr *q = l4;
		if ((void *)(q + 1) > end)
			return 0;
		int query = q->type == 8 || q->type == 13 || q->type == 15 || q->type == 17 ||
			    (proto == NEXTHDR_ICMPV6 && q->type == 128);
		return query && (cfg->flags & STEER_ANY_QUOTED) && in_range(cfg, q->id);
	}
	return (cfg->flags & STEER_ANY_QUOTED) && scanned_proto(cfg, proto);
}

/* Is this ICMP error about a packet we sent? `q` points at the quoted IPv4 header. */
/* Is `a` (network order) one of our IPv4 source addresses (the pool from src_ip)? */
static __always_inline int is_our_v4(const struct steer_config *cfg, __u32 a)
{
	return bpf_ntohl(a) - bpf_ntohl(cfg->src_ip) < cfg->src_count;
}

static __always_inline int quotes_us(const struct steer_config *cfg, void *q, void *end)
{
	struct iphdr *qip = q;
	if ((void *)(qip + 1) > end)
		return 0;
	if (!is_our_v4(cfg, qip->saddr))
		return 0;
	__u32 qlen = qip->ihl * 4;
	if (qlen < sizeof(*qip))
		return 0;
	return quoted_probe(cfg, qip->protocol, q + qlen, end);
}

static __always_inline int is_our_v6(const struct steer_config *cfg, const struct in6_addr *a)
{
	const __u32 *w = (const __u32 *)cfg->src_ip6;
	return a->in6_u.u6_addr32[0] == w[0] && a->in6_u.u6_addr32[1] == w[1] &&
	       a->in6_u.u6_addr32[2] == w[2] &&
	       bpf_ntohl(a->in6_u.u6_addr32[3]) - bpf_ntohl(w[3]) < cfg->src_count;
}

/* Is this ICMPv6 error about a packet we sent? `q` points at the quoted IPv6 header; we send no
 * extension headers, so the quoted L4 header follows it directly. */
static __always_inline int quotes_us6(const struct steer_config *cfg, void *q, void *end)
{
	struct ipv6hdr *qip = q;
	if ((void *)(qip + 1) > end)
		return 0;
	if (!is_our_v6(cfg, &qip->saddr))
		return 0;
	return quoted_probe(cfg, qip->nexthdr, (void *)(qip + 1), end);
}

/* 1: steer, 0: pass. */
static __always_inline int ours_v6(const struct steer_config *cfg, void *l3, void *end)
{
	struct ipv6hdr *ip6 = l3;
	if ((void *)(ip6 + 1) > end || ip6->version != 6)
		return 0;
	if (!(cfg->flags & STEER_HAS_V6) || !is_our_v6(cfg, &ip6->daddr))
		return 0;
	__u8 next = ip6->nexthdr;
	void *cur = (void *)(ip6 + 1);
#pragma unroll
	for (int i = 0; i < MAX_EXT_HEADERS; i++) {
		if (next != NEXTHDR_HOP && next != NEXTHDR_ROUTING && next != NEXTHDR_DEST &&
		    next != NEXTHDR_FRAGMENT && next != NEXTHDR_AUTH)
			break;
		__u8 *h = cur;
		if ((void *)(h + 8) > end)
			return 0;
		if (next == NEXTHDR_FRAGMENT) {
			/* Only the first fragment holds the upper-layer header. */
			__u16 off = ((__u16)h[2] << 8 | h[3]) >> 3;
			if (off != 0)
				return 0;
			next = h[0];
			cur = h + 8;
		} else if (next == NEXTHDR_AUTH) {
			next = h[0];
			cur = h + ((__u32)h[1] + 2) * 4;
		} else {
			next = h[0];
			cur = h + ((__u32)h[1] + 1) * 8;
		}
	}
	switch (next) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP: {
		__u16 *ports = cur;
		if ((void *)(ports + 2) > end)
			return 0;
		return in_range(cfg, ports[1]);
	}
	case NEXTHDR_ICMPV6: {
		struct icmphdr *icmp = cur; /* same first 8 bytes as ICMPv6 */
		if ((void *)(icmp + 1) > end)
			return 0;
		if (icmp->type >= ICMPV6_NDP_FIRST && icmp->type <= ICMPV6_NDP_LAST)
			return 0;
		if (icmp->type >= ICMPV6_DEST_UNREACH && icmp->type <= ICMPV6_PARAMPROB)
			return quotes_us6(cfg, (void *)(icmp + 1), end);
		if (icmp->type == ICMPV6_ECHO_REPLY)
			return (cfg->flags & (STEER_ECHO_REPLY | STEER_ICMP_QUERY)) &&
			       in_range(cfg, icmp->id);
		return 0;
	}
	default:
		return (cfg->flags & STEER_ALL_PROTOS) != 0;
	}
}

/* 1: steer, 0: pass. `l3` points at the IPv4 header. */
static __always_inline int ours_v4(const struct steer_config *cfg, void *l3, void *end)
{
	struct iphdr *ip = l3;
	if ((void *)(ip + 1) > end || ip->version != 4 || !(cfg->flags & STEER_HAS_V4) ||
	    !is_our_v4(cfg, ip->daddr))
		return 0;
	__u32 ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return 0;
	/* A later fragment starts with payload, not a header: its "ports" are data. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return 0;
	void *l4 = (void *)ip + ihl;

	switch (ip->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP: {
		/* TCP, UDP and SCTP all start with source port, destination port. */
		__u16 *ports = l4;
		if ((void *)(ports + 2) > end)
			return 0;
		return in_range(cfg, ports[1]);
	}
	case IPPROTO_ICMP: {
		struct icmphdr *icmp = l4;
		if ((void *)(icmp + 1) > end)
			return 0;
		switch (icmp->type) {
		case ICMP_DEST_UNREACH:
		case ICMP_TIME_EXCEEDED:
		case ICMP_PARAMETERPROB:
		case ICMP_SOURCE_QUENCH:
		case ICMP_REDIRECT:
			return quotes_us(cfg, (void *)(icmp + 1), end);
		case ICMP_ECHOREPLY:
			return (cfg->flags & (STEER_ECHO_REPLY | STEER_ICMP_QUERY)) &&
			       in_range(cfg, icmp->id);
		case ICMP_TIMESTAMPREPLY:
		case ICMP_INFO_REPLY:
		case ICMP_ADDRESSREPLY:
			return (cfg->flags & STEER_ICMP_QUERY) && in_range(cfg, icmp->id);
		default:
			return 0;
		}
	}
	default:
		return (cfg->flags & STEER_ALL_PROTOS) && scanned_proto(cfg, ip->protocol);
	}
}

/* Prepends the Ethernet header a bare-IP link lacks (zero addresses, the IP version's
 * EtherType). 0 when the kernel gave no headroom: the packet is then dropped, not passed, as a
 * steered packet with no socket is. */
static __always_inline int add_link_header(struct xdp_md *ctx, __u16 ethertype)
{
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct ethhdr)))
		return 0;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return 0;
	__builtin_memset(eth, 0, 2 * ETH_ALEN);
	eth->h_proto = ethertype;
	return 1;
}

SEC("xdp")
int xdpscan_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;

	const struct steer_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return XDP_PASS;

	void *l3;
	__u16 ethertype;
	if (cfg->flags & STEER_BARE_IP) {
		/* The IP header comes first; its version says the family. */
		__u8 *v = data;
		if ((void *)(v + 1) > end)
			return XDP_PASS;
		ethertype = (*v >> 4) == 6 ? bpf_htons(ETH_P_IPV6) : bpf_htons(ETH_P_IP);
		l3 = data;
	} else {
		struct ethhdr *eth = data;
		if ((void *)(eth + 1) > end)
			return XDP_PASS;
		ethertype = eth->h_proto;
		l3 = (void *)(eth + 1);
	}
	int ours;
	if (ethertype == bpf_htons(ETH_P_IPV6))
		ours = ours_v6(cfg, l3, end);
	else if (ethertype == bpf_htons(ETH_P_IP))
		ours = ours_v4(cfg, l3, end);
	else
		ours = 0;
	if (!ours)
		return XDP_PASS;
	if ((cfg->flags & STEER_BARE_IP) && !add_link_header(ctx, ethertype))
		return XDP_DROP;
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_DROP);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
