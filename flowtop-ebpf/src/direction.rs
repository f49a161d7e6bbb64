//! Which way bytes moved. Its own module because both the accounting (`account.rs`)
//! and the datagram-peer notes (`udp_peer.rs`, which `account` reads) need it.

#[derive(Clone, Copy)]
pub enum Direction {
    Rx,
    Tx,
}
