//! The targets of one balancer, what the health checks last said of each,
//! how busy each is, and how a new connection or request picks one.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use protocol::views::load_balancers::{Algorithm, TargetHealth};

/// One target address. Shared by every listener of its balancer, so health
/// and load count across listeners, as a backend server does in HAProxy.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) address: IpAddr,
    health: AtomicU8,
    /// Connections (TCP listeners) plus requests (HTTP listeners) in flight.
    active: AtomicUsize,
}

impl Target {
    fn new(address: IpAddr) -> Self {
        Self {
            address,
            health: AtomicU8::new(encode(TargetHealth::Unknown)),
            active: AtomicUsize::new(0),
        }
    }

    pub(super) fn health(&self) -> TargetHealth {
        decode(self.health.load(Ordering::Relaxed))
    }

    pub(super) fn set_health(&self, health: TargetHealth) {
        self.health.store(encode(health), Ordering::Relaxed);
    }

    /// Unchecked targets take traffic, so a new balancer works at once; only
    /// a target the checks took out is skipped.
    fn takes_traffic(&self) -> bool {
        self.health() != TargetHealth::Unhealthy
    }

    fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }
}

fn encode(health: TargetHealth) -> u8 {
    match health {
        TargetHealth::Unknown => 0,
        TargetHealth::Healthy => 1,
        TargetHealth::Unhealthy => 2,
    }
}

fn decode(value: u8) -> TargetHealth {
    match value {
        1 => TargetHealth::Healthy,
        2 => TargetHealth::Unhealthy,
        _ => TargetHealth::Unknown,
    }
}

/// A connection or request in flight to a target; counts toward least
/// connections until dropped.
#[derive(Debug)]
pub(super) struct Lease {
    target: Arc<Target>,
}

impl Lease {
    fn new(target: Arc<Target>) -> Self {
        target.active.fetch_add(1, Ordering::Relaxed);
        Self { target }
    }

    pub(super) fn address(&self) -> IpAddr {
        self.target.address
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.target.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The balancer's targets in spec order.
#[derive(Debug)]
pub(super) struct Pool {
    /// Replaced whole on apply; pickers clone the `Arc` and never hold the
    /// lock while connecting.
    targets: RwLock<Arc<[Arc<Target>]>>,
    least_connections: std::sync::atomic::AtomicBool,
    /// Round-robin position, and the tie-breaker for least connections.
    next: AtomicUsize,
}

impl Pool {
    pub(super) fn new() -> Self {
        Self {
            targets: RwLock::new(Arc::from(Vec::new())),
            least_connections: false.into(),
            next: AtomicUsize::new(0),
        }
    }

    pub(super) fn targets(&self) -> Arc<[Arc<Target>]> {
        self.targets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(super) fn set_algorithm(&self, algorithm: Algorithm) {
        self.least_connections
            .store(algorithm == Algorithm::LeastConnections, Ordering::Relaxed);
    }

    /// Sets the target list, keeping the state (health, connections) of
    /// addresses that stay. Returns the targets that are new.
    pub(super) fn set_targets(&self, addresses: &[IpAddr]) -> Vec<Arc<Target>> {
        let mut targets = self
            .targets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next: Vec<Arc<Target>> = Vec::with_capacity(addresses.len());
        let mut added = Vec::new();
        for address in addresses {
            if next.iter().any(|t| t.address == *address) {
                continue;
            }
            match targets.iter().find(|t| t.address == *address) {
                Some(kept) => next.push(kept.clone()),
                None => {
                    let target = Arc::new(Target::new(*address));
                    added.push(target.clone());
                    next.push(target);
                }
            }
        }
        *targets = Arc::from(next);
        added
    }

    /// A target taking traffic, other than `avoid` (the one that just
    /// failed, when retrying), by the balancer's algorithm.
    pub(super) fn pick(&self, avoid: Option<IpAddr>) -> Option<Lease> {
        let targets = self.targets();
        let usable = |t: &&Arc<Target>| t.takes_traffic() && Some(t.address) != avoid;
        let count = targets.iter().filter(usable).count();
        if count == 0 {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let chosen = if self.least_connections.load(Ordering::Relaxed) {
            // Start the scan at a rotating position so that ties (an idle
            // balancer) still spread round robin.
            let len = targets.len();
            (0..len)
                .map(|i| &targets[(turn + i) % len])
                .filter(usable)
                .min_by_key(|t| t.active())
        } else {
            // Rotate over the usable targets only, so a target that is down
            // does not hand its share to its neighbour alone.
            targets.iter().filter(usable).nth(turn % count)
        };
        chosen.map(|t| Lease::new(t.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 1, last])
    }

    #[test]
    fn round_robin_skips_targets_that_are_down() {
        let pool = Pool::new();
        pool.set_targets(&[addr(1), addr(2), addr(3)]);
        let picked: Vec<_> = (0..6)
            .map(|_| pool.pick(None).expect("a target").address())
            .collect();
        assert_eq!(
            picked,
            [addr(1), addr(2), addr(3), addr(1), addr(2), addr(3)]
        );
        pool.targets()[1].set_health(TargetHealth::Unhealthy);
        let picked: Vec<_> = (0..4)
            .map(|_| pool.pick(None).expect("a target").address())
            .collect();
        assert_eq!(picked.iter().filter(|a| **a == addr(1)).count(), 2);
        assert_eq!(picked.iter().filter(|a| **a == addr(3)).count(), 2);
        assert!(
            pool.pick(Some(addr(1)))
                .is_some_and(|l| l.address() == addr(3))
        );
        pool.targets()[0].set_health(TargetHealth::Unhealthy);
        pool.targets()[2].set_health(TargetHealth::Unhealthy);
        assert!(pool.pick(None).is_none());
    }

    #[test]
    fn least_connections_prefers_the_idle_target() {
        let pool = Pool::new();
        pool.set_targets(&[addr(1), addr(2)]);
        pool.set_algorithm(Algorithm::LeastConnections);
        let busy = pool.pick(None).expect("a target");
        for _ in 0..5 {
            let lease = pool.pick(None).expect("a target");
            assert_ne!(lease.address(), busy.address());
        }
        drop(busy);
        assert_eq!(pool.targets().iter().map(|t| t.active()).sum::<usize>(), 0);
    }

    #[test]
    fn updating_targets_keeps_state_of_those_that_stay() {
        let pool = Pool::new();
        pool.set_targets(&[addr(1), addr(2)]);
        pool.targets()[1].set_health(TargetHealth::Healthy);
        let added = pool.set_targets(&[addr(2), addr(3), addr(3)]);
        assert_eq!(added.len(), 1);
        let targets = pool.targets();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].health(), TargetHealth::Healthy);
        assert_eq!(targets[1].health(), TargetHealth::Unknown);
    }
}
