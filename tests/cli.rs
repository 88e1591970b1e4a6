//! Integration tests: the real `fetchbench` binary against real HTTP(S) servers on 127.0.0.1.

mod cases;
mod server;
mod util;
