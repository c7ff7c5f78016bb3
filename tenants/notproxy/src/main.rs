//! `notproxy`: a command-line component (`wasi:cli/run`), not an HTTP function. The admin API
//! must refuse it: it does not export `wasi:http/incoming-handler`.

fn main() {
    println!("this component is a command, not a wasi:http/proxy function");
}
