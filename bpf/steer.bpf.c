// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Steers the replies to a scan into AF_XDP sockets so the local kernel never sees them
 * (and so never answers a SYN-ACK with a RST). A packet is ours when it is addressed to
 * the scan's source IP and either
 *   - is TCP/UDP to the scan's source-port range, or
 *   - is an ICMP error whose quoted header is a packet we sent (our source IP, port range), or
 *   - (flag) is an ICMP echo reply (or, with another flag, any ICMP query reply) whose
 *     identifier lies in the port range.
 * Everything else is passed to the kernel untouched. With no socket on the receiving queue the
 * packet is dropped, never passed: the port range belongs to the scan alone.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
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

/* Is this ICMP error about a packet we sent? `q` points at the quoted IPv4 header. */
static __always_inline int quotes_us(const struct steer_config *cfg, void *q, void *end)
{
	struct iphdr *qip = q;
	if ((void *)(qip + 1) > end)
		return 0;
	if (qip->saddr != cfg->src_ip)
		return 0;
	if (cfg->flags & STEER_ANY_QUOTED)
		return 1;
	if (qip->protocol != IPPROTO_TCP && qip->protocol != IPPROTO_UDP)
		return 0;
	__u32 qlen = qip->ihl * 4;
	if (qlen < sizeof(*qip))
		return 0;
	__u16 *sport = q + qlen;
	if ((void *)(sport + 1) > end)
		return 0;
	return in_range(cfg, *sport);
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

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		goto pass;

	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->version != 4 || ip->daddr != cfg->src_ip)
		goto pass;
	__u32 ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		goto pass;
	void *l4 = (void *)ip + ihl;

	int ours = 0;
	switch (ip->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP: {
		/* TCP and UDP both start with source port, destination port. */
		__u16 *ports = l4;
		if ((void *)(ports + 2) > end)
			goto pass;
		ours = in_range(cfg, ports[1]);
		break;
	}
	case IPPROTO_ICMP: {
		struct icmphdr *icmp = l4;
		if ((void *)(icmp + 1) > end)
			goto pass;
		switch (icmp->type) {
		case ICMP_DEST_UNREACH:
		case ICMP_TIME_EXCEEDED:
		case ICMP_PARAMETERPROB:
		case ICMP_SOURCE_QUENCH:
		case ICMP_REDIRECT:
			ours = quotes_us(cfg, (void *)(icmp + 1), end);
			break;
		case ICMP_ECHOREPLY:
			ours = (cfg->flags & (STEER_ECHO_REPLY | STEER_ICMP_QUERY)) && in_range(cfg, icmp->id);
			break;
		case ICMP_TIMESTAMPREPLY:
		case ICMP_INFO_REPLY:
		case ICMP_ADDRESSREPLY:
			ours = (cfg->flags & STEER_ICMP_QUERY) && in_range(cfg, icmp->id);
			break;
		default:
			break;
		}
		break;
	}
	default:
		ours = (cfg->flags & STEER_ALL_PROTOS) != 0;
		break;
	}
	if (!ours)
		goto pass;

	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_DROP);
pass:
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
