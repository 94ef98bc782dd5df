/* parse.h - bounds-checked header cursor for the edge gate.
 *
 * Two steps so the source check can run before anything protocol-specific:
 *   eg_parse_l3(): Ethernet, up to two VLAN tags (802.1Q / 802.1ad), the IPv4 header
 *                  (IHL sanity, options skipped) or the IPv6 header and its extension
 *                  header chain (hop-by-hop, routing, destination options, fragment,
 *                  AH) up to EG_V6_EXT_MAX headers. Fills addresses, L4 protocol,
 *                  fragment state and the L4 offset.
 *   eg_parse_l4(): TCP/UDP ports and TCP flags, ICMP/ICMPv6 presence. Never called
 *                  for a non-first fragment: its payload is not an L4 header.
 * Every read is preceded by a check against data_end; anything that does not fit
 * is reported as malformed, never read. */
#ifndef EG_PARSE_H
#define EG_PARSE_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "edgegate/abi.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

enum eg_parse_rc {
	EG_P_OK = 0,
	EG_P_NONIP,     /* not an IP packet: the gate has no opinion */
	EG_P_MALFORMED, /* truncated or invalid header after a valid IP ethertype */
};

enum eg_frag { EG_FRAG_NONE = 0, EG_FRAG_FIRST, EG_FRAG_LATER };

struct eg_pkt {
	__be32 src4;    /* IPv4 source (network order) */
	__be32 dst4;    /* IPv4 destination (network order) */
	struct eg_addr src; /* IPv6 only (zero for IPv4: flow_words, rate_key map src4) */
	struct eg_addr dst;
	__u32 l4off;    /* offset of the L4 header from data */
	__u8 l4proto;   /* IPPROTO_* after the extension chain */
	__u8 frag;      /* enum eg_frag */
	__u8 v6;
	__u8 tcp_flags; /* eg_parse_l4: TCP flags byte (FIN..CWR) */
	__u16 sport;    /* host order, TCP/UDP only */
	__u16 dport;
	__u8 has_ports;
	__u8 has_embed4; /* IPv6 source that carries an IPv4 address (eg_embedded_v4) */
	__be32 embed4;
};

#define EG_TCP_FIN 0x01
#define EG_TCP_SYN 0x02
#define EG_TCP_RST 0x04
#define EG_TCP_ACK 0x10

struct eg_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct eg_v6_ext {
	__u8 nexthdr;
	__u8 len;
};

struct eg_v6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset<<3 | res | M */
	__be32 id;
};

/* The IPv4 address an IPv6 source stands for, when its form says so: IPv4-compatible
 * ::a.b.c.d (deprecated, RFC 4291 2.5.5.1; :: and ::1, 0.0.0.0/8, are not), 6to4
 * 2002:AABB:CCDD::/48 (RFC 3056), NAT64/SIIT well-known prefix 64:ff9b::/96 (RFC 6052)
 * and Teredo 2001:0::/32 (RFC 4380: the client's address, inverted, in the last 32
 * bits). The gate applies the IPv4 deny rules to it too (docs/gate.md): the most
 * restrictive reading of who sent the packet wins. */
static __always_inline void eg_embedded_v4(const __u8 *a, struct eg_pkt *p)
{
	__u32 w[4];

	__builtin_memcpy(w, a, 16);
	if (w[0] == 0 && w[1] == 0 && w[2] == 0 && a[12] != 0) {
		__builtin_memcpy(&p->embed4, a + 12, 4);
	} else if (a[0] == 0x20 && a[1] == 0x02) {
		__builtin_memcpy(&p->embed4, a + 2, 4);
	} else if (w[0] == bpf_htonl(0x0064ff9b) && w[1] == 0 && w[2] == 0) {
		__builtin_memcpy(&p->embed4, a + 12, 4);
	} else if (w[0] == bpf_htonl(0x20010000)) {
		p->embed4 = ~w[3];
	} else {
		return;
	}
	p->has_embed4 = 1;
}

static __always_inline int eg_parse_v4(void *data, void *data_end, __u32 off, struct eg_pkt *p)
{
	struct iphdr *ip = data + off;
	__u32 hlen;

	if ((void *)(ip + 1) > data_end)
		return EG_P_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return EG_P_MALFORMED;
	hlen = ip->ihl * 4;
	if (data + off + hlen > data_end) /* options must be present in full */
		return EG_P_MALFORMED;
	if (bpf_ntohs(ip->tot_len) < hlen)
		return EG_P_MALFORMED;
	/* src and dst stay zero: the IPv4-mapped forms are built where needed (flow_words,
	 * rate_key), not stored byte by byte on every packet */
	p->src4 = ip->saddr;
	p->dst4 = ip->daddr;
	p->l4proto = ip->protocol;
	if (ip->frag_off & bpf_htons(0x1fff))
		p->frag = EG_FRAG_LATER;
	else if (ip->frag_off & bpf_htons(0x2000))
		p->frag = EG_FRAG_FIRST;
	p->l4off = off + hlen;
	return EG_P_OK;
}

/* Walks the IPv6 extension chain. A chain longer than EG_V6_EXT_MAX headers is
 * malformed: what lies behind it cannot be classified, and a gate that gave up
 * by passing would be trivially bypassed by padding the chain. */
static __always_inline int eg_parse_v6(void *data, void *data_end, __u32 off, struct eg_pkt *p)
{
	struct ipv6hdr *ip6 = data + off;
	__u8 nh;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return EG_P_MALFORMED;
	if (ip6->version != 6)
		return EG_P_MALFORMED;
	__builtin_memcpy(p->src.a, &ip6->saddr, 16);
	__builtin_memcpy(p->dst.a, &ip6->daddr, 16);
	eg_embedded_v4(p->src.a, p);
	p->v6 = 1;
	nh = ip6->nexthdr;
	off += sizeof(*ip6);

#pragma unroll
	for (i = 0; i < EG_V6_EXT_MAX; i++) {
		struct eg_v6_ext *e;
		struct eg_v6_frag *f;

		switch (nh) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			e = data + off;
			if ((void *)e + 8 > data_end)
				return EG_P_MALFORMED;
			nh = e->nexthdr;
			off += ((__u32)e->len + 1) * 8;
			break;
		case IPPROTO_AH:
			e = data + off;
			if ((void *)e + 8 > data_end)
				return EG_P_MALFORMED;
			nh = e->nexthdr;
			off += ((__u32)e->len + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			f = data + off;
			if ((void *)(f + 1) > data_end)
				return EG_P_MALFORMED;
			nh = f->nexthdr;
			if (f->frag_off & bpf_htons(0xfff8))
				p->frag = EG_FRAG_LATER;
			else if (f->frag_off & bpf_htons(1))
				p->frag = EG_FRAG_FIRST;
			off += sizeof(*f);
			/* nothing after a later fragment's header is a header */
			if (p->frag == EG_FRAG_LATER)
				goto done;
			break;
		default:
			goto done;
		}
		if (off > 0xffff) /* keeps the verifier's range small; never a real chain */
			return EG_P_MALFORMED;
	}
	switch (nh) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_FRAGMENT:
		return EG_P_MALFORMED; /* chain longer than we walk */
	}
done:
	p->l4proto = nh;
	p->l4off = off;
	return EG_P_OK;
}

static __always_inline int eg_parse_l3(void *data, void *data_end, struct eg_pkt *p)
{
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__u16 proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return EG_P_MALFORMED;
	proto = eth->h_proto;
	/* untagged IPv4 (a flood's frames, most traffic) before the tag checks */
	if (proto == bpf_htons(ETH_P_IP))
		return eg_parse_v4(data, data_end, off, p);

#pragma unroll
	for (i = 0; i < 2; i++) {
		struct eg_vlan_hdr *v;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		v = data + off;
		if ((void *)(v + 1) > data_end)
			return EG_P_MALFORMED;
		proto = v->proto;
		off += sizeof(*v);
	}
	/* A third tag is not something we can see through: refuse rather than pass. */
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return EG_P_MALFORMED;
	if (proto == bpf_htons(ETH_P_IP))
		return eg_parse_v4(data, data_end, off, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return eg_parse_v6(data, data_end, off, p);
	return EG_P_NONIP;
}

/* L4 of a first fragment or unfragmented packet. */
static __always_inline int eg_parse_l4(void *data, void *data_end, struct eg_pkt *p)
{
	void *l4 = data + (p->l4off & 0xffff);

	if (p->frag == EG_FRAG_LATER)
		return EG_P_OK;
	switch (p->l4proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return EG_P_MALFORMED;
		if (th->doff < 5)
			return EG_P_MALFORMED;
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		p->tcp_flags = ((__u8 *)th)[13];
		p->has_ports = 1;
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return EG_P_MALFORMED;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
		p->has_ports = 1;
		break;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (l4 + 4 > data_end) /* type, code, checksum */
			return EG_P_MALFORMED;
		break;
	}
	return EG_P_OK;
}

#endif
