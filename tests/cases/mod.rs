mod bench;
mod download;
mod failures;
mod faults;
mod input;
mod names;
mod output;
mod tls;
