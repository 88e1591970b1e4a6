mod bench;
mod download;
mod failures;
mod input;
mod names;
mod output;
mod tls;
