/*
 * fulcrum hwinit C shim: out-of-line copies of DPDK's static inline
 * functions, see shim.h for why each exists.
 */
#include "shim.h"

uint16_t fulcrum_rx_burst(uint16_t port_id, uint16_t queue_id,
			  struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t fulcrum_tx_burst(uint16_t port_id, uint16_t queue_id,
			  struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *fulcrum_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int fulcrum_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
			       unsigned count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void fulcrum_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

unsigned fulcrum_lcore_id(void)
{
	return rte_lcore_id();
}

int fulcrum_errno(void)
{
	return rte_errno;
}

uint64_t fulcrum_rdtsc(void)
{
	return rte_rdtsc();
}
