/*
 * fulcrum hwinit C shim: the DPDK 22.11 entry points that are static inline
 * in the public headers (so they have no symbol to link against) and the
 * constants that bindgen cannot evaluate (RTE_BIT64(...) macros).
 *
 * Only burst-level calls live here: a C call per packet was measured to cost
 * 11-33%, so per-packet field access is done in Rust from the bindgen
 * struct rte_mbuf instead.
 */
#ifndef FULCRUM_SHIM_H
#define FULCRUM_SHIM_H

#include <stdint.h>

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_cycles.h>
#include <rte_version.h>
#include <rte_pdump.h>
#include <rte_telemetry.h>

/* RSS hash types fulcrum asks for: IPv4/IPv6 addresses and TCP/UDP ports. */
static const uint64_t FULCRUM_ETH_RSS_IP = RTE_ETH_RSS_IP;
static const uint64_t FULCRUM_ETH_RSS_TCP = RTE_ETH_RSS_TCP;
static const uint64_t FULCRUM_ETH_RSS_UDP = RTE_ETH_RSS_UDP;
/* Rx offload: deliver the RSS hash in mbuf->hash.rss. */
static const uint64_t FULCRUM_ETH_RX_OFFLOAD_RSS_HASH = RTE_ETH_RX_OFFLOAD_RSS_HASH;
/* Speed capability and link speed "unknown" sentinel. */
static const uint32_t FULCRUM_ETH_SPEED_NUM_UNKNOWN = RTE_ETH_SPEED_NUM_UNKNOWN;

/* rte_eth_rx_burst, not inlinable from Rust. */
uint16_t fulcrum_rx_burst(uint16_t port_id, uint16_t queue_id,
			  struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
/* rte_eth_tx_burst, not inlinable from Rust. */
uint16_t fulcrum_tx_burst(uint16_t port_id, uint16_t queue_id,
			  struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
/* rte_pktmbuf_alloc: a reset mbuf with data_len 0, or NULL. */
struct rte_mbuf *fulcrum_pktmbuf_alloc(struct rte_mempool *mp);
/* rte_pktmbuf_alloc_bulk: `count` reset mbufs into `mbufs`, all or none;
 * 0 on success, a negative errno when the pool has too few. */
int fulcrum_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
			       unsigned count);
/* rte_pktmbuf_free: frees the whole segment chain. */
void fulcrum_pktmbuf_free(struct rte_mbuf *m);
/* rte_lcore_id: this thread's lcore, or LCORE_ID_ANY. */
unsigned fulcrum_lcore_id(void);
/* rte_errno: the calling thread's last DPDK error number. */
int fulcrum_errno(void);
/* rte_rdtsc: the time stamp counter. */
uint64_t fulcrum_rdtsc(void);

#endif /* FULCRUM_SHIM_H */
