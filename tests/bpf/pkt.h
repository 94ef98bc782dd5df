/* pkt.h - crafts Ethernet/VLAN/IPv4/IPv6/TCP/UDP/ICMP frames for BPF_PROG_TEST_RUN.
 * Checksums are left zero: the gate never looks at them. */
#ifndef EG_TEST_PKT_H
#define EG_TEST_PKT_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

struct pk {
	uint8_t b[1024];
	size_t n;
	size_t l3;     /* offset of the IP header */
	size_t l4;     /* offset of the L4 header */
	int v6;
};

static inline void pk_put(struct pk *p, const void *d, size_t n)
{
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

static inline void pk_u8(struct pk *p, uint8_t v) { pk_put(p, &v, 1); }
static inline void pk_be16(struct pk *p, uint16_t v)
{
	v = htons(v);
	pk_put(p, &v, 2);
}
static inline void pk_zero(struct pk *p, size_t n)
{
	memset(p->b + p->n, 0, n);
	p->n += n;
}

/* Ethernet with ntags VLAN tags (tpids given), then ethertype. */
static inline void pk_eth(struct pk *p, const uint16_t *tpids, int ntags, uint16_t type)
{
	static const uint8_t mac[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };

	memset(p, 0, sizeof(*p));
	pk_put(p, mac, 12);
	for (int i = 0; i < ntags; i++) {
		pk_be16(p, tpids[i]);
		pk_be16(p, (uint16_t)(100 + i)); /* TCI: VLAN id */
	}
	pk_be16(p, type);
}

/* IPv4 header, optlen bytes of options (NOPs + EOL), frag = the raw frag_off field. */
static inline void pk_ip4(struct pk *p, const char *src, const char *dst, uint8_t proto,
			  size_t optlen, uint16_t frag, uint16_t payload)
{
	uint8_t h[20] = { 0 };
	uint32_t s, d;

	inet_pton(AF_INET, src, &s);
	inet_pton(AF_INET, dst, &d);
	h[0] = (uint8_t)(0x40 | ((20 + optlen) / 4));
	*(uint16_t *)&h[2] = htons((uint16_t)(20 + optlen + payload));
	*(uint16_t *)&h[6] = htons(frag);
	h[8] = 64;
	h[9] = proto;
	memcpy(&h[12], &s, 4);
	memcpy(&h[16], &d, 4);
	p->l3 = p->n;
	pk_put(p, h, 20);
	for (size_t i = 0; i < optlen; i++)
		pk_u8(p, i + 1 == optlen ? 0 : 1);
	p->l4 = p->n;
}

static inline void pk_ip6(struct pk *p, const char *src, const char *dst, uint8_t nexthdr,
			  uint16_t payload)
{
	uint8_t h[40] = { 0x60 };

	*(uint16_t *)&h[4] = htons(payload);
	h[6] = nexthdr;
	h[7] = 64;
	inet_pton(AF_INET6, src, &h[8]);
	inet_pton(AF_INET6, dst, &h[24]);
	p->l3 = p->n;
	p->v6 = 1;
	pk_put(p, h, 40);
	p->l4 = p->n;
}

/* Generic extension header (hop-by-hop, routing, dest-opts) of (len8 + 1) * 8 bytes. */
static inline void pk_ext6(struct pk *p, uint8_t next, uint8_t len8)
{
	pk_u8(p, next);
	pk_u8(p, len8);
	pk_zero(p, (size_t)(len8 + 1) * 8 - 2);
	p->l4 = p->n;
}

static inline void pk_frag6(struct pk *p, uint8_t next, uint16_t offset8, int more)
{
	pk_u8(p, next);
	pk_u8(p, 0);
	pk_be16(p, (uint16_t)((offset8 << 3) | (more ? 1 : 0)));
	pk_zero(p, 4);
	p->l4 = p->n;
}

#define PK_SYN 0x02
#define PK_ACK 0x10

static inline void pk_tcp(struct pk *p, uint16_t sport, uint16_t dport, uint8_t flags)
{
	uint8_t h[20] = { 0 };

	*(uint16_t *)&h[0] = htons(sport);
	*(uint16_t *)&h[2] = htons(dport);
	h[12] = 5 << 4;
	h[13] = flags;
	*(uint16_t *)&h[14] = htons(65535);
	pk_put(p, h, 20);
}

static inline void pk_udp(struct pk *p, uint16_t sport, uint16_t dport)
{
	pk_be16(p, sport);
	pk_be16(p, dport);
	pk_be16(p, 8);
	pk_be16(p, 0);
}

static inline void pk_icmp(struct pk *p, uint8_t type)
{
	pk_u8(p, type);
	pk_zero(p, 7);
}

#endif
