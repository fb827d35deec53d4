//! `tunnelkit demo` in a build without the `demo` feature (`cargo build -p tunnelkit-cli
//! --no-default-features`): the embedded SSH servers are not in this binary, and the command
//! says so instead of being unknown.

use tokio_util::sync::CancellationToken;

use crate::exit::Exit;
use crate::opts::DemoArgs;

/// What `tunnelkit demo` prints in this build.
pub const LEFT_OUT: &str = "tunnelkit demo: the demo was left out of this build (built without \
     the `demo` feature); a build with it: cargo build --release -p tunnelkit-cli";

/// Says that the demo is not in this build; exits with failure.
pub async fn run(_args: &DemoArgs, _cancel: CancellationToken) -> Exit {
    eprintln!("{LEFT_OUT}");
    Exit::Failure
}
