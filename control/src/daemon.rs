//! The `fulcrum` daemon: config → EAL → ports → workers → admin socket →
//! wait for a signal → orderly shutdown.
//!
//! Layer: control, slow path only. Every startup problem ends here as one
//! [`StartupError`] whose `Display` is a single line naming the problem and
//! its remedy; the binary prints it as `fulcrum: error: ...` and exits 1.
//! The exception path's kernel interfaces are `crate::kernel`'s: checked and
//! added to EAL's arguments before init, set up after the data ports.
//! SIGHUP reloads the config file (`crate::admin::reload`); under systemd
//! (`Type=notify`) the daemon sends `READY=1` once the admin socket answers,
//! `RELOADING=1`/`READY=1` around a reload and `STOPPING=1` on shutdown.
//! Shutdown order on SIGINT/SIGTERM: stop VRRP (masters send their
//! priority-0 advert, which the still-running workers put on the wire) and
//! the health checks, stop the workers (each finishes its round
//! and frees what it holds), stop and close the ports and their kernel
//! interfaces, remove the admin socket, `rte_eal_cleanup`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dataplane::pipeline::Core;
use dataplane::stats::SharedStats;
use dataplane::worker::{LoopConf, Mesh, Worker};
use hwinit::dpdk::{CaptureStatus, DpdkQueue, Eal, Mempool, PortSetup};
use tracing::{info, warn};

use crate::admin::{
    build_status, notify, Access, AdminError, AdminServer, EditFn, Handlers, PortStatus, Reloader,
    SharedReload,
};
use crate::compile::{compile_with_health, VrrpView};
use crate::config::Config;
use crate::edit::Editor;
use crate::health::pool::Pool;
use crate::health::supervisor::{SharedReport, Supervisor};
use crate::metrics::MetricsServer;
use crate::telemetry::{FulcrumTelemetry, PublishedStatus};

/// A startup failure: one line, problem and remedy.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// From the DPDK layer (EAL, hugepages, ports, mempools); its text already
    /// names the remedy.
    #[error("{0}")]
    Hw(#[from] hwinit::HwError),
    /// A worker lcore that EAL did not enable.
    #[error("worker lcore {lcore} is not enabled in EAL: add it to \"-l\"/\"--lcores\" in eal_args (main lcore is {main})")]
    LcoreNotEnabled {
        /// The configured worker lcore.
        lcore: u32,
        /// EAL's main lcore.
        main: u32,
    },
    /// A worker configured on the main lcore, which runs the control thread.
    #[error("worker lcore {0} is EAL's main lcore, which runs the control thread: pick another lcore for the worker or set \"--main-lcore\" in eal_args")]
    WorkerOnMainLcore(u32),
    /// The admin socket could not be created.
    #[error("admin socket: {0}")]
    Admin(#[source] AdminError),
    /// VRRP could not start (its sockets on the kernel interfaces).
    #[error("{0}")]
    Vrrp(#[source] crate::vrrp::driver::VrrpStartError),
    /// The exception path's kernel interfaces (`crate::kernel`); its text
    /// names the remedy.
    #[error("{0}")]
    Kernel(#[from] crate::kernel::KernelError),
    /// Installing signal handlers failed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Runs the daemon until SIGINT or SIGTERM; `cfg` was loaded from
/// `config_path`, which SIGHUP and `fulcrumctl --reload` read again.
///
/// # Errors
/// Any [`StartupError`]; once workers run, errors are logged, not returned.
pub fn run(cfg: Config, config_path: &Path) -> Result<(), StartupError> {
    let stop = Arc::new(AtomicBool::new(false));
    // The workers' own flag, set after the signal once the control side
    // has said goodbye on the wire (VRRP's priority-0 advert leaves through
    // a worker's TAP queue).
    let workers_stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(StartupError::Signals)?;
    }
    // Registered first thing, so that an early SIGHUP is a reload once
    // running, never the default action (terminate without cleanup).
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .map_err(StartupError::Signals)?;
    let access = Access::for_group(cfg.admin_group.as_deref()).map_err(StartupError::Admin)?;

    // The exception path adds one TAP vdev per port to EAL's arguments.
    crate::kernel::precheck(&cfg)?;
    let eal = Eal::init(&crate::kernel::eal_args(&cfg))?;
    let main = eal.main_lcore();
    // DPDK's own tools: dpdk-dumpcap (needs multi-process) and
    // dpdk-telemetry.py, whose fulcrum commands read `published`.
    match eal.init_capture() {
        CaptureStatus::Available { runtime_dir } => {
            info!(runtime_dir = %runtime_dir.display(), "packet capture available: dpdk-dumpcap --file-prefix=<this file-prefix> -i <port device>")
        }
        CaptureStatus::Unavailable { reason } => warn!("packet capture unavailable: {reason}"),
    }
    let published: PublishedStatus = Arc::default();
    let telemetry = FulcrumTelemetry::new(Arc::clone(&published));
    if let Err(e) = eal.register_telemetry(Box::new(telemetry), &crate::telemetry::COMMANDS) {
        warn!("{e}: dpdk-telemetry.py will not show fulcrum's commands");
    }
    for &lcore in &cfg.workers {
        if lcore == main {
            return Err(StartupError::WorkerOnMainLcore(lcore));
        }
        if !eal.lcore_enabled(lcore) {
            return Err(StartupError::LcoreNotEnabled { lcore, main });
        }
    }
    let n_workers = cfg.workers.len() as u16;

    // One mempool per NUMA socket that runs a worker.
    let mut sockets: Vec<u32> = cfg.workers.iter().map(|&l| eal.lcore_socket(l)).collect();
    sockets.sort_unstable();
    sockets.dedup();
    let mut pools: Vec<(u32, Mempool)> = Vec::new();
    for &s in &sockets {
        let pool = eal.create_mempool(&format!("fulcrum_s{s}"), cfg.mbufs_per_socket, s as i32)?;
        pools.push((s, pool));
    }
    let pool_for = |socket: u32| -> &Mempool {
        pools
            .iter()
            .find(|(s, _)| *s == socket)
            .map(|(_, p)| p)
            .unwrap_or(&pools[0].1)
    };

    let mut port_ids = Vec::new();
    let mut macs = Vec::new();
    // (config name, device, port id) for the device counters.
    let mut port_names = Vec::new();
    for p in &cfg.ports {
        let id = eal.port_by_name(&p.device)?;
        if let Some(mac) = p.mac {
            eal.set_mac(id, mac.0)?;
        }
        let setup = PortSetup {
            n_rxq: n_workers,
            n_txq: n_workers,
            rx_desc: cfg.rx_desc,
            tx_desc: cfg.tx_desc,
            promiscuous: true,
            rss: n_workers > 1,
            mtu: None,
        };
        let info = eal.setup_port(id, &setup, pool_for(eal.lcore_socket(cfg.workers[0])))?;
        for note in &info.downgraded {
            warn!(port = %p.name, device = %p.device, "{note}");
        }
        let link = eal.link_status(id);
        if link.up {
            info!(port = %p.name, device = %p.device, driver = %info.driver, mac = %fmt_mac(info.mac), speed_mbps = link.speed_mbps, "port up");
        } else {
            warn!(port = %p.name, device = %p.device, driver = %info.driver, mac = %fmt_mac(info.mac), "link is down");
        }
        port_ids.push(id);
        port_names.push((p.name.clone(), p.device.clone(), id));
        macs.push(info.mac);
    }

    let kernel = crate::kernel::KernelPorts::setup(
        &eal,
        &cfg,
        &macs,
        n_workers,
        pool_for(eal.lcore_socket(cfg.workers[0])),
    )?;

    // Real servers with `alpha` start out of rotation: the first snapshot
    // already has the checkers' initial view.
    let initial_health = Pool::from_config(&cfg, None).0.view();
    // VRRP addresses start held by no instance (RFC 5798 §6.4.1): the VRRP
    // thread publishes them as its instances become master.
    let snap = compile_with_health(
        &cfg,
        &macs,
        1,
        None,
        &[],
        &initial_health,
        &VrrpView::default(),
    );
    let n_reals = snap.reals.len();
    let snapshot = Arc::new(ArcSwap::from_pointee(snap));
    let mesh: Arc<Mesh<hwinit::dpdk::Mbuf>> = Mesh::new(usize::from(n_workers));
    let stats: Vec<Arc<SharedStats>> = (0..n_workers)
        .map(|_| Arc::new(SharedStats::new(n_reals)))
        .collect();
    let conf = LoopConf {
        burst: usize::from(cfg.burst),
        idle_sleep: Duration::from_micros(u64::from(cfg.idle_sleep_us)),
    };

    // The connection listing (fulcrumctl -L -n -c): one channel per worker.
    let dumps: Vec<Arc<dataplane::conn::DumpChannel>> = (0..n_workers)
        .map(|_| dataplane::conn::DumpChannel::new())
        .collect();
    for (i, &lcore) in cfg.workers.iter().enumerate() {
        let pool = pool_for(eal.lcore_socket(lcore));
        let queues: Vec<DpdkQueue> = port_ids
            .iter()
            .map(|&p| eal.queue(p, i as u16, pool))
            .collect();
        let mut core = Core::new(i as u16, n_workers, cfg.conn_table_size);
        let icmp = &cfg.icmp_rate_limit;
        core.set_icmp_rate_limit(icmp.rate_pps, icmp.burst, 0);
        let mut worker = Worker::new(
            core,
            queues,
            Arc::clone(&snapshot),
            Arc::clone(&mesh),
            Arc::clone(&stats[i]),
            conf,
        )
        .with_conn_dump(Arc::clone(&dumps[i]));
        if kernel.enabled() {
            let x = &cfg.exception_path;
            worker = worker.with_kernel(kernel.queues(&eal, i as u16, pool), x.rate_pps, x.burst);
        }
        let stop = Arc::clone(&workers_stop);
        eal.launch(lcore, move || {
            worker.run(&stop);
            0
        })?;
        info!(worker = i, lcore, "worker started");
    }

    let started = Instant::now();
    let health_report: SharedReport = Arc::default();
    // Refreshed by the main loop once a second (never by a worker).
    let ports: Arc<Mutex<Vec<PortStatus>>> =
        Arc::new(Mutex::new(crate::telemetry::read_ports(&eal, &port_names)));
    // Rates (--rate) and -Z baselines, sampled every 2 s below.
    let rates = Arc::new(std::sync::Mutex::new(crate::rates::Rates::new()));
    let last_reload: SharedReload = Arc::default();
    let status = {
        let ports = Arc::clone(&ports);
        let rates = Arc::clone(&rates);
        let health_report = Arc::clone(&health_report);
        let last_reload = Arc::clone(&last_reload);
        let snapshot = Arc::clone(&snapshot);
        let stats = stats.clone();
        let lcores = cfg.workers.clone();
        let size = u64::from(cfg.conn_table_size);
        Arc::new(move || {
            let snap = snapshot.load();
            let mut st = build_status(&snap, &stats, &lcores, started.elapsed().as_secs(), size);
            rates
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .apply(&snap, &mut st);
            st.health = health_report
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            st.ports = ports
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            st.reload = last_reload
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            st
        })
    };
    let status_for_tools = Arc::clone(&status);
    // Runtime edits (fulcrumctl -A/-E/-D/-a/-e/-d/-C) go through the editor:
    // validate, compile against the current snapshot, publish.
    let editor = Arc::new(Editor::with_health(
        cfg.clone(),
        macs.clone(),
        Arc::clone(&snapshot),
        stats.clone(),
        initial_health,
    ));
    let edit: EditFn = {
        let editor = Arc::clone(&editor);
        Arc::new(move |req: &serde_json::Value| {
            let cmd = req.get("cmd").and_then(|c| c.as_str()).unwrap_or("?");
            match editor.handle(req) {
                Ok(generation) => {
                    info!(cmd, generation, "runtime edit published");
                    Ok(generation)
                }
                Err(e) => {
                    warn!(cmd, "runtime edit refused: {e}");
                    Err(e)
                }
            }
        })
    };
    // ipvsadm's -c, -Z, --set, --timeout and -R, and the reload.
    let reloader = Arc::new(Reloader::new(
        Arc::clone(&editor),
        config_path.to_path_buf(),
        last_reload,
    ));
    let vrrp_report = crate::vrrp::driver::new_report();
    let mut commands = vec![
        crate::vrrp::report::command(Arc::clone(&vrrp_report)),
        crate::conns::command(dumps.clone()),
        crate::commands::zero(Arc::clone(&rates), Arc::clone(&snapshot), stats.clone()),
        reloader.command(),
    ];
    commands.extend(crate::commands::editor_commands(Arc::clone(&editor)));
    let handlers = Handlers {
        status: status.clone(),
        edit: Some(edit),
        commands,
    };
    let admin = match AdminServer::start_with_access(&cfg.admin_socket, handlers, access) {
        Ok(a) => a,
        Err(e) => {
            workers_stop.store(true, Ordering::Relaxed);
            for &lcore in &cfg.workers {
                eal.wait_lcore(lcore);
            }
            return Err(StartupError::Admin(e));
        }
    };
    // The Prometheus endpoint and status page (config `metrics`), from the
    // same status as the admin socket: a bind failure costs the metrics,
    // not the director.
    let metrics = match cfg.metrics.listen_addr().filter(|_| cfg.metrics.enabled) {
        Some(addr) => match MetricsServer::start(addr, cfg.metrics.allow_remote, status.clone()) {
            Ok(m) => {
                info!(%addr, "metrics on http://{addr}/metrics, status page on http://{addr}/");
                Some(m)
            }
            Err(e) => {
                warn!("{e}: running without the metrics endpoint");
                None
            }
        },
        None => None,
    };
    // VRRP (config vrrp_instance): its own thread, sockets on the TAP
    // interfaces; a failure to open them is a startup error, since the
    // director would otherwise hold no VIP at all.
    let links: Arc<Vec<AtomicBool>> = Arc::new(
        port_ids
            .iter()
            .map(|&id| AtomicBool::new(eal.link_status(id).up))
            .collect(),
    );
    let ifaces: Vec<String> = cfg.ports.iter().map(|p| p.kernel_iface()).collect();
    let vrrp = match crate::vrrp::driver::VrrpThread::start(
        &cfg,
        &ifaces,
        &macs,
        Arc::clone(&links),
        Arc::clone(&editor),
        vrrp_report,
    ) {
        Ok(v) => v,
        Err(e) => {
            workers_stop.store(true, Ordering::Relaxed);
            for &lcore in &cfg.workers {
                eal.wait_lcore(lcore);
            }
            admin.stop();
            return Err(StartupError::Vrrp(e));
        }
    };
    let health = match Supervisor::start(Arc::clone(&editor), health_report) {
        Ok(h) => Some(h),
        Err(e) => {
            warn!("health checking could not start: {e}: real servers stay as configured");
            None
        }
    };
    info!(socket = %cfg.admin_socket.display(), workers = n_workers, "fulcrum ready");
    notify(&[sd_notify::NotifyState::Ready]);

    let mut warned_partial = 0u64;
    let mut next_sweep = Instant::now();
    let mut last_rate = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last_rate.elapsed() >= crate::rates::SAMPLE_INTERVAL {
            let elapsed = last_rate.elapsed();
            last_rate += elapsed;
            let totals = |id| crate::rates::real_totals(&stats, id);
            rates
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .sample(&snapshot.load(), totals, elapsed);
        }
        for (l, &id) in links.iter().zip(&port_ids) {
            l.store(eal.link_status(id).up, Ordering::Relaxed);
        }
        if hup.swap(false, Ordering::Relaxed) {
            // Logged and kept for the status by the reloader.
            let _ = reloader.reload("SIGHUP");
        }
        if Instant::now() < next_sweep {
            continue;
        }
        next_sweep = Instant::now() + Duration::from_secs(1);
        // Device counters, then the status DPDK's telemetry thread reads.
        let fresh = crate::telemetry::read_ports(&eal, &port_names);
        *ports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        published.store(Some(Arc::new(status_for_tools())));
        // A deleted service's VIP stops answering once its connections
        // are gone.
        for vip in editor.sweep_drains() {
            info!(vip = %Ipv4Addr::from(vip), "last connection of a deleted service's VIP gone: no longer answering for it");
        }
        // Once per port: TX checksum offload on the peer of a vdev leaves
        // partial checksums that fulcrum must drop.
        let partial = stats
            .iter()
            .fold(0u64, |m, s| m | s.load().partial_csum_ports)
            & !warned_partial;
        for (i, p) in cfg
            .ports
            .iter()
            .enumerate()
            .filter(|(i, _)| partial & (1u64 << (i & 63)) != 0)
        {
            warn!(
                port = %p.name,
                "packets with partial TCP/UDP checksums arrive (dropped as l4_checksum_partial): the peer offloads TX checksums that nothing fills in; on a veth, run `ethtool -K <peer> tx off`"
            );
            warned_partial |= 1u64 << (i & 63);
        }
    }
    info!("signal received: stopping health checks and workers");
    notify(&[sd_notify::NotifyState::Stopping]);
    // Masters send their priority-0 advert while the workers still run:
    // the frame leaves through a worker's TAP queue, which it polls every
    // 32 rounds, so the workers get a moment before they stop.
    if let Some(v) = vrrp {
        v.stop();
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(h) = health {
        h.stop();
    }
    workers_stop.store(true, Ordering::Relaxed);
    for &lcore in &cfg.workers {
        let rc = eal.wait_lcore(lcore);
        if rc != 0 {
            warn!(lcore, rc, "worker exited abnormally");
        }
    }
    for &id in &port_ids {
        eal.stop_port(id);
        eal.close_port(id);
    }
    kernel.close(&eal);
    admin.stop();
    if let Some(m) = metrics {
        m.stop();
    }
    // Frames still in flight between workers go back to their pools before
    // EAL frees the memory the pools live in.
    drop(mesh);
    drop(pools);
    if !eal.cleanup() {
        warn!("DPDK memory still in use at exit: rte_eal_cleanup skipped");
    }
    info!("fulcrum stopped");
    Ok(())
}

fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}
