//! The banner grabber's links, owned by the receive thread: the grabber's frames go to the
//! transmit threads (their inject channel: the AF_XDP transmit ring has one producer), its
//! answers to the version worker, and the worker's orders come back. The grabber itself does
//! no I/O (`grab.rs`); the receive path flushes this after every read and tick.

use std::{
    sync::{atomic::AtomicUsize, Arc},
    time::Instant,
};

use crossbeam_channel::{Receiver, Sender};

use super::grab::{Answer, Grabber, Order};
use crate::{cookie::PortRange, output::Record};

/// The receive thread's end of the version worker's channels (`-sV`).
pub(super) struct VersionLink {
    pub(super) answers: Sender<Answer>,
    pub(super) orders: Receiver<Order>,
    /// Ports in detection: the grabber counts them up, the worker down.
    pub(super) detecting: Arc<AtomicUsize>,
}

/// A grabber with the channels it is carried over.
pub(super) struct GrabLink {
    pub(super) grabber: Grabber,
    inject: Sender<Vec<u8>>,
    version: Option<(Sender<Answer>, Receiver<Order>)>,
}

impl GrabLink {
    /// `ports`: the source ports of the grabber's own connections (`-sV`).
    pub(super) fn new(
        grabber: Grabber,
        inject: Sender<Vec<u8>>,
        version: Option<VersionLink>,
        ports: PortRange,
    ) -> Self {
        let (grabber, version) = match version {
            Some(v) => (
                grabber.with_version(v.detecting, ports),
                Some((v.answers, v.orders)),
            ),
            None => (grabber, None),
        };
        GrabLink {
            grabber,
            inject,
            version,
        }
    }

    /// Carries out the orders the worker gave since the last time.
    pub(super) fn take_orders(&mut self, now: Instant) {
        if let Some((_, orders)) = &self.version {
            for o in orders.try_iter() {
                self.grabber.order(o, now);
            }
        }
    }

    /// Hands what the grabber made to the transmit threads and the worker. A closed channel
    /// only means that side is over (the scan is ending).
    pub(super) fn flush(&mut self) {
        for f in self.grabber.drain_transmits() {
            let _ = self.inject.send(f);
        }
        if let Some((answers, _)) = &self.version {
            for a in self.grabber.drain_answers() {
                let _ = answers.send(a);
            }
        }
    }

    /// The end: every conversation ends with what it has, every order not carried out goes
    /// back to the worker as aborted; returns the finished records.
    pub(super) fn close_all(&mut self, now: Instant) -> Vec<Record> {
        let unserved: Vec<Order> = match &self.version {
            Some((_, orders)) => orders.try_iter().collect(),
            None => Vec::new(),
        };
        let records = self.grabber.close_all(now, unserved);
        self.flush();
        records
    }
}
