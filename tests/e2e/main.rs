//! End-to-end tests: real `did-registry` processes on 127.0.0.1:0 and real `wallet`
//! commands. Tests assert problem `type`s and exit codes, never message text.

mod credentials;
mod gateway;
mod harness;
mod interop;
mod registry;
mod wallet;
