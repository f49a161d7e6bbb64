#![no_std]
//! Empty: this lets flowtop list the eBPF crate as a build-dependency, so cargo
//! rebuilds flowtop when the programs change. The programs are the `flowtop` binary.
