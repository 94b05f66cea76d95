// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The lab's stand-in for the Internet, for live benchmarks: attached to the target side of the
 * lab's link, it answers probes in XDP (XDP_TX, no kernel stack) by a fixed rule of (address,
 * port), so the truth of any range is computable (src/io/responder.rs mirrors the rule):
 *   TCP SYN     -> SYN-ACK (open), RST (closed), ICMP unreachable of the rule's code, or
 *                  nothing (silent), by `responder_rule`
 *   UDP         -> the datagram echoed back (open), ICMP port unreachable (closed), ICMP
 *                  unreachable of the rule's code, or nothing
 *   ICMP echo   -> echo reply (ICMPv6 echo too)
 * both families; everything else is passed to the kernel (neighbour discovery, ARP). With
 * repeating on (`settings`), answers the rule marks RESPONDER_TWICE go out twice, through a
 * broadcast to a DEVMAP that holds the ingress interface twice (`twice`): XDP_TX sends one.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "responder.h"

struct tcp_hdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff_res;
	__u8 flags;
	__be16 window;
	__sum16 check;
	__be16 urg_ptr;
};

struct udp_hdr {
	__be16 source;
	__be16 dest;
	__be16 len;
	__sum16 check;
};

struct icmp_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* The sequence number of every SYN-ACK: a constant, so repeated answers are identical. */
#define RESPONDER_ISN 0x1000

/* Counters, per CPU: answers sent by kind, for the benchmark's own figures. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RESPONDER_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* settings[0]: non-zero to send RESPONDER_TWICE answers twice. Set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} settings SEC(".maps");

/* The interface the responder is attached to, at both keys: a broadcast sends two copies. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} twice SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &what);
	if (n)
		*n += 1;
}

/* Sends the answer built in place: once with XDP_TX, or twice when the rule says so and
 * repeating is on. */
static __always_inline int send(__u32 rule)
{
	count(rule & 0xff);
	if (!(rule & RESPONDER_TWICE))
		return XDP_TX;
	__u32 zero = 0;
	__u32 *on = bpf_map_lookup_elem(&settings, &zero);
	if (!on || !*on)
		return XDP_TX;
	count(RESPONDER_REPEATED);
	return bpf_redirect_map(&twice, 0, BPF_F_BROADCAST);
}

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return ~s & 0xffff;
}

/* A 64-bit one's-complement sum folded into 32 bits, for a helper's seed. */
static __always_inline __u32 carry32(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	return s;
}

/* RFC 1624: the checksum after one 16-bit word (as loaded from memory) changes. */
static __always_inline __u16 replace16(__u16 check, __u16 old, __u16 new)
{
	__u32 s = (__u16)~check + (__u16)~old + (__u32) new;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return ~s & 0xffff;
}

static __always_inline void swap_macs(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];
	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

/* Turns a SYN into its answer in place: SYN-ACK when `open`, else RST. 20 bytes, no options. */
static __always_inline void answer_syn(struct tcp_hdr *t, int open)
{
	__be16 p = t->source;
	t->source = t->dest;
	t->dest = p;
	t->ack_seq = bpf_htonl(bpf_ntohl(t->seq) + 1);
	t->seq = open ? bpf_htonl(RESPONDER_ISN) : 0;
	t->doff_res = 5 << 4;
	t->flags = open ? (TCP_SYN | TCP_ACK) : (TCP_RST | TCP_ACK);
	t->window = open ? bpf_htons(65535) : 0;
	t->urg_ptr = 0;
	t->check = 0;
}

/* Turns the IPv4 probe in `ctx` into an ICMP destination unreachable of `code` quoting its IP
 * header and first 8 bytes (RFC 792), from the address it was sent to: 70 bytes. */
static __always_inline int unreach4(struct xdp_md *ctx, __u8 code, __u32 rule)
{
	long len = (long)ctx->data_end - (long)ctx->data;
	if (len > 42 && bpf_xdp_adjust_tail(ctx, 42 - (int)len))
		return XDP_DROP;
	if (bpf_xdp_adjust_head(ctx, -28))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 70 > end)
		return XDP_DROP;
	struct ethhdr *eth = data, *old = data + 28;
	struct iphdr *ip = data + 14, *q = data + 42;
	struct icmp_hdr *i = data + 34;
	__builtin_memcpy(eth->h_dest, old->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, old->h_dest, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = bpf_htons(56);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	ip->saddr = q->daddr;
	ip->daddr = q->saddr;
	ip->check = 0;
	ip->check = fold(bpf_csum_diff(0, 0, (__be32 *)ip, 20, 0));
	i->type = 3;
	i->code = code;
	i->checksum = 0;
	i->rest = 0;
	i->checksum = fold(bpf_csum_diff(0, 0, (__be32 *)i, 36, 0));
	return send(rule);
}

/* The same for IPv6 (RFC 4443): ICMPv6 destination unreachable quoting the probe's IPv6
 * header and first 8 bytes, checksummed over the pseudo header: 110 bytes. */
static __always_inline int unreach6(struct xdp_md *ctx, __u8 code, __u32 rule)
{
	long len = (long)ctx->data_end - (long)ctx->data;
	if (len > 62 && bpf_xdp_adjust_tail(ctx, 62 - (int)len))
		return XDP_DROP;
	if (bpf_xdp_adjust_head(ctx, -48))
		return XDP_DROP;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 110 > end)
		return XDP_DROP;
	struct ethhdr *eth = data, *old = data + 48;
	struct ipv6hdr *ip = data + 14, *q = data + 62;
	struct icmp_hdr *i = data + 54;
	__builtin_memcpy(eth->h_dest, old->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, old->h_dest, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	*(__be32 *)ip = bpf_htonl(6 << 28);
	ip->payload_len = bpf_htons(56);
	ip->nexthdr = 58;
	ip->hop_limit = 64;
	ip->saddr = q->daddr;
	ip->daddr = q->saddr;
	i->type = 1;
	i->code = code;
	i->checksum = 0;
	i->rest = 0;
	__u64 s = bpf_csum_diff(0, 0, (__be32 *)&ip->saddr, 32, 0);
	s += bpf_htons(56) + bpf_htons(58);
	s = bpf_csum_diff(0, 0, (__be32 *)i, 56, carry32(s));
	i->checksum = fold(s);
	return send(rule);
}

/* Whether a TCP SYN (udp 0) or UDP datagram gets an answer other than the ones built in place:
 * silence, an ICMP unreachable of the rule's code, or for a closed UDP port, port unreachable. */
static __always_inline int refused(__u32 rule, int udp)
{
	__u32 kind = rule & 0xff;
	return kind == RESPONDER_SILENT || kind == RESPONDER_UNREACH ||
	       (udp && kind == RESPONDER_CLOSED);
}

/* That answer, for a probe `refused` says gets one. */
static __always_inline int refuse(struct xdp_md *ctx, __u32 rule, int v6, int udp)
{
	__u32 kind = rule & 0xff;
	if (kind == RESPONDER_SILENT) {
		count(RESPONDER_SILENT);
		return XDP_DROP;
	}
	if (kind == RESPONDER_UNREACH)
		return v6 ? unreach6(ctx, responder_code6((rule >> 8) & 0xff), rule)
			  : unreach4(ctx, responder_code4((rule >> 8) & 0xff), rule);
	return v6 ? unreach6(ctx, 4, rule) : unreach4(ctx, 3, rule);
}

static __always_inline int v4(struct xdp_md *ctx, struct ethhdr *eth, void *end)
{
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)))
		return XDP_PASS;
	__u32 rule = responder_rule(bpf_ntohl(ip->daddr), 0);
	__be32 a = ip->saddr;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcp_hdr *t = (void *)(ip + 1);
		if ((void *)(t + 1) > end)
			return XDP_PASS;
		if ((t->flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN)
			return XDP_DROP;
		rule = responder_rule(bpf_ntohl(ip->daddr), bpf_ntohs(t->dest));
		if (refused(rule, 0))
			return refuse(ctx, rule, 0, 0);
		answer_syn(t, (rule & 0xff) == RESPONDER_OPEN);
		ip->tot_len = bpf_htons(40);
		__u64 s = bpf_csum_diff(0, 0, (__be32 *)&ip->saddr, 8, 0);
		s += bpf_htons(IPPROTO_TCP) + bpf_htons(20);
		s = bpf_csum_diff(0, 0, (__be32 *)t, 20, carry32(s));
		t->check = fold(s);
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udp_hdr *u = (void *)(ip + 1);
		if ((void *)(u + 1) > end)
			return XDP_PASS;
		rule = responder_rule(bpf_ntohl(ip->daddr), bpf_ntohs(u->dest));
		if (refused(rule, 1))
			return refuse(ctx, rule, 0, 1);
		/* Swapping addresses and ports leaves the UDP checksum as it was. */
		__be16 p = u->source;
		u->source = u->dest;
		u->dest = p;
	} else if (ip->protocol == IPPROTO_ICMP) {
		struct icmp_hdr *i = (void *)(ip + 1);
		if ((void *)(i + 1) > end || i->type != 8)
			return XDP_PASS;
		i->checksum = replace16(i->checksum, bpf_htons(8 << 8), 0);
		i->type = 0;
		rule = RESPONDER_OPEN;
	} else {
		return XDP_PASS;
	}
	ip->saddr = ip->daddr;
	ip->daddr = a;
	ip->ttl = 64;
	ip->check = 0;
	ip->check = fold(bpf_csum_diff(0, 0, (__be32 *)ip, 20, 0));
	swap_macs(eth);
	if (ip->protocol == IPPROTO_TCP) {
		/* Drop the SYN's options and any padding: the answer is 54 bytes. */
		int extra = (int)((long)end - (long)eth) - 54;
		if (extra > 0 && bpf_xdp_adjust_tail(ctx, -extra))
			return XDP_DROP;
	}
	return send(rule);
}

static __always_inline int v6(struct xdp_md *ctx, struct ethhdr *eth, void *end)
{
	struct ipv6hdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	__u32 low = bpf_ntohl(ip->daddr.in6_u.u6_addr32[3]);
	__u32 rule;
	if (ip->nexthdr == IPPROTO_TCP) {
		struct tcp_hdr *t = (void *)(ip + 1);
		if ((void *)(t + 1) > end)
			return XDP_PASS;
		if ((t->flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN)
			return XDP_DROP;
		rule = responder_rule(low, bpf_ntohs(t->dest));
		if (refused(rule, 0))
			return refuse(ctx, rule, 1, 0);
		answer_syn(t, (rule & 0xff) == RESPONDER_OPEN);
		ip->payload_len = bpf_htons(20);
		__u64 s = bpf_csum_diff(0, 0, (__be32 *)&ip->saddr, 32, 0);
		s += bpf_htons(IPPROTO_TCP) + bpf_htons(20);
		s = bpf_csum_diff(0, 0, (__be32 *)t, 20, carry32(s));
		t->check = fold(s);
	} else if (ip->nexthdr == IPPROTO_UDP) {
		struct udp_hdr *u = (void *)(ip + 1);
		if ((void *)(u + 1) > end)
			return XDP_PASS;
		rule = responder_rule(low, bpf_ntohs(u->dest));
		if (refused(rule, 1))
			return refuse(ctx, rule, 1, 1);
		__be16 p = u->source;
		u->source = u->dest;
		u->dest = p;
	} else if (ip->nexthdr == 58) {
		struct icmp_hdr *i = (void *)(ip + 1);
		if ((void *)(i + 1) > end || i->type != 128)
			return XDP_PASS;
		i->checksum = replace16(i->checksum, bpf_htons(128 << 8), bpf_htons(129 << 8));
		i->type = 129;
		rule = RESPONDER_OPEN;
	} else {
		return XDP_PASS;
	}
	struct in6_addr a = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = a;
	ip->hop_limit = 64;
	swap_macs(eth);
	if (ip->nexthdr == IPPROTO_TCP) {
		int extra = (int)((long)end - (long)eth) - 74;
		if (extra > 0 && bpf_xdp_adjust_tail(ctx, -extra))
			return XDP_DROP;
	}
	return send(rule);
}

SEC("xdp")
int xdpscan_responder(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return v4(ctx, eth, end);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return v6(ctx, eth, end);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
