//! Build script for hwinit: generates the DPDK 22.11 bindings, compiles the C
//! shim and tells rustc how to link DPDK.
//!
//! Only active with the `dpdk` feature (`CARGO_FEATURE_DPDK`); without it the
//! crate is the pure-Rust `PortQueue` trait plus in-memory queues and needs
//! neither libdpdk-dev nor libclang.
//!
//! Linking: static by default, because Debian's shared PMDs spend about 28% of
//! the cycles in `__tls_get_addr` (measured 1.6x faster static, see
//! BENCHMARKS.md). Only the libraries and drivers fulcrum uses are named, each with
//! `+whole-archive` so that the drivers' self-registration constructors are
//! kept. `FULCRUM_DPDK_SHARED=1` at build time links the shared libraries the
//! way `pkg-config --libs libdpdk` says instead.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Without the `dpdk` feature the crate is the trait and the in-memory
    // queues only: nothing to generate, compile or link.
    #[cfg(feature = "dpdk")]
    dpdk::run();
}

/// Everything DPDK-specific; its build-dependencies (bindgen, cc,
/// pkg-config) are optional and only present with the `dpdk` feature.
#[cfg(feature = "dpdk")]
mod dpdk {
    use std::env;
    use std::path::PathBuf;
    use std::process::Command;

    /// The one line printed when libdpdk cannot be found; the daemon's docs and
    /// `make deps` refer to it.
    const NOT_FOUND: &str = "libdpdk-dev (DPDK 22.11) not found by pkg-config: \
                             run 'apt-get install -y libdpdk-dev' or 'make deps'";

    /// DPDK libraries and drivers linked statically with `+whole-archive`, in
    /// dependency order (users before providers). Libraries: EAL, what
    /// ethdev needs, gso (used by net_tap's TX), pdump with what it needs
    /// (pcapng for the capture format, bpf for dumpcap's `-f` filters) so
    /// `dpdk-dumpcap` can capture, hash and rcu (unused by fulcrum, but
    /// Debian's shared net_tap needs them, so a secondary dumpcap loads them
    /// and registers their `RTE_HASH`/`RTE_FBK_HASH` tail queues, which
    /// must already exist in the primary or the secondary's EAL init
    /// fails), and telemetry for `dpdk-telemetry.py`;
    /// meter is not referenced by this set but kept as the ethdev metering
    /// API's provider. Drivers:
    /// the buses and the vdev PMDs this project runs on (no real NIC PMDs:
    /// a PCI NIC deployment links shared with `FULCRUM_DPDK_SHARED=1` or
    /// adds its PMD here).
    const STATIC_RTE_LIBS: &[&str] = &[
        // drivers
        "rte_net_af_packet",
        "rte_net_af_xdp",
        "rte_net_pcap",
        "rte_net_null",
        "rte_net_ring",
        "rte_net_tap",
        "rte_mempool_ring",
        "rte_bus_pci",
        "rte_bus_vdev",
        // libraries
        "rte_pdump",
        "rte_pcapng",
        "rte_bpf",
        "rte_gso",
        "rte_hash",
        "rte_rcu",
        "rte_ethdev",
        "rte_pci",
        "rte_meter",
        "rte_net",
        "rte_mbuf",
        "rte_mempool",
        "rte_ring",
        "rte_eal",
        "rte_telemetry",
        "rte_kvargs",
    ];

    /// System libraries the static DPDK objects above need, linked
    /// dynamically: libxdp/libbpf for af_xdp, libpcap for net_pcap, libnuma
    /// and libbsd (strlcpy) for EAL. `pkg-config --static` also names elf,
    /// z, atomic and dl; with this subset nothing references them (checked
    /// with `readelf -d`: --as-needed dropped them), so they are left out.
    const SYSTEM_LIBS: &[&str] = &["xdp", "bpf", "numa", "bsd", "pcap"];

    /// Generates, compiles and links; exits the build with one line on any
    /// failure.
    pub(crate) fn run() {
        println!("cargo:rerun-if-changed=shim/shim.c");
        println!("cargo:rerun-if-changed=shim/shim.h");
        println!("cargo:rerun-if-env-changed=FULCRUM_DPDK_SHARED");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG");

        let cflags = match pkg_config_raw(&["--cflags", "libdpdk"]) {
            Some(f) => f,
            None => fail(NOT_FOUND),
        };
        let libdir = pkg_config_raw(&["--variable=libdir", "libdpdk"])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/usr/lib/x86_64-linux-gnu".to_string());
        let cflags: Vec<String> = cflags.split_whitespace().map(str::to_string).collect();

        compile_shim(&cflags);
        link_dpdk(&libdir);
        generate_bindings(&cflags);
    }

    /// Prints `msg` as the build's only error line and stops the build.
    fn fail(msg: &str) -> ! {
        eprintln!("{msg}");
        std::process::exit(1);
    }

    /// Runs `pkg-config ARGS`; `None` if pkg-config is missing or fails.
    fn pkg_config_raw(args: &[&str]) -> Option<String> {
        let out = Command::new(env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into()))
            .args(args)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8(out.stdout).ok()
    }

    /// Compiles shim/shim.c with DPDK's own cflags, which carry
    /// `-include rte_config.h -march=corei7` that the inline headers need.
    fn compile_shim(cflags: &[String]) {
        let mut build = cc::Build::new();
        build.file("shim/shim.c").include("shim").warnings(true);
        for f in cflags {
            build.flag(f);
        }
        // DPDK headers use GNU extensions and a few casts that trip -Wextra.
        build.flag_if_supported("-Wno-unused-parameter");
        build.compile("fulcrum_shim");
    }

    /// Emits the link lines: static `+whole-archive` by default, shared via
    /// pkg-config with `FULCRUM_DPDK_SHARED=1`.
    fn link_dpdk(libdir: &str) {
        let shared = env::var("FULCRUM_DPDK_SHARED")
            .map(|v| v == "1")
            .unwrap_or(false);
        if shared {
            if pkg_config::Config::new().probe("libdpdk").is_err() {
                fail(NOT_FOUND);
            }
            return;
        }
        println!("cargo:rustc-link-search=native={libdir}");
        for lib in STATIC_RTE_LIBS {
            let path = PathBuf::from(libdir).join(format!("lib{lib}.a"));
            if !path.exists() {
                fail(&format!(
                    "{} missing: the static DPDK libraries come with libdpdk-dev; \
                     or build with FULCRUM_DPDK_SHARED=1",
                    path.display()
                ));
            }
            // -bundle: pass the archive to the final link instead of copying
            // ~all of DPDK into hwinit's rlib.
            println!("cargo:rustc-link-lib=static:+whole-archive,-bundle={lib}");
        }
        for lib in SYSTEM_LIBS {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
    }

    /// Runs bindgen over shim/shim.h with allowlists so that only the EAL,
    /// ethdev, mbuf, mempool and lcore API (and the types they reach) are
    /// generated.
    fn generate_bindings(cflags: &[String]) {
        // Generate code for the workspace's MSRV (rust-version 1.75), not for
        // whatever rustc builds this.
        let target = bindgen::RustTarget::stable(75, 0)
            .unwrap_or_else(|_| fail("bindgen does not know Rust 1.75"));
        let mut b = bindgen::Builder::default()
            .rust_target(target)
            .header("shim/shim.h")
            .clang_args(cflags)
            .clang_arg("-Ishim")
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
            .prepend_enum_name(false)
            .derive_default(true)
            .layout_tests(true)
            .wrap_unsafe_ops(true)
            .generate_comments(false)
            .allowlist_recursively(true);
        for f in [
            "rte_eal_.*",
            "rte_eth_.*",
            "rte_pktmbuf_.*",
            "rte_mempool_avail_count",
            "rte_mempool_in_use_count",
            "rte_mempool_lookup",
            "rte_mbuf_.*",
            "rte_lcore_.*",
            "rte_get_main_lcore",
            "rte_socket_id",
            "rte_strerror",
            "rte_get_tsc_hz",
            "rte_version",
            "rte_pdump_init",
            "rte_pdump_uninit",
            "rte_telemetry_register_cmd",
            "rte_tel_data_.*",
            "fulcrum_.*",
        ] {
            b = b.allowlist_function(f);
        }
        for t in [
            "rte_mbuf",
            "rte_mempool",
            "rte_eth_conf",
            "rte_eth_dev_info",
            "rte_eth_link",
            "rte_eth_stats",
            "rte_eth_xstat",
            "rte_eth_xstat_name",
            "rte_tel_data",
            "rte_eth_rxconf",
            "rte_eth_txconf",
            "rte_ether_addr",
            "rte_eth_rx_mq_mode",
            "rte_eth_tx_mq_mode",
            "rte_lcore_state_t",
        ] {
            b = b.allowlist_type(t);
        }
        for v in [
            "RTE_ETH_.*",
            "RTE_MBUF_.*",
            "RTE_MAX_ETHPORTS",
            "RTE_MAX_LCORE",
            "RTE_MAX_QUEUES_PER_PORT",
            "RTE_PKTMBUF_HEADROOM",
            "RTE_ETHER_.*",
            "LCORE_ID_ANY",
            "SOCKET_ID_ANY",
            "RTE_ETH_NAME_MAX_LEN",
            "RTE_MEMPOOL_NAMESIZE",
            "RTE_ETH_XSTATS_NAME_SIZE",
            "RTE_TEL_.*",
            "FULCRUM_.*",
        ] {
            b = b.allowlist_var(v);
        }
        // Packed protocol headers that contain aligned members: rustc refuses
        // `#[repr(packed)]` around `#[repr(align)]`, and fulcrum parses these
        // headers itself (dataplane::wire), so they are opaque blobs here.
        for t in [
            "rte_arp_hdr",
            "rte_arp_ipv4",
            "rte_l2tpv2_combined_msg_hdr",
            "rte_gtp_psc_generic_hdr",
            "rte_gtp_psc_type0_hdr",
            "rte_gtp_psc_type1_hdr",
        ] {
            b = b.opaque_type(t).no_debug(t);
        }
        let bindings = match b.generate() {
            Ok(b) => b,
            Err(e) => fail(&format!("bindgen over DPDK headers failed: {e}")),
        };
        let out =
            PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("dpdk_sys.rs");
        if let Err(e) = bindings.write_to_file(&out) {
            fail(&format!("writing {}: {e}", out.display()));
        }
    }
}
