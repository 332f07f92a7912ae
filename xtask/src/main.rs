//! `cargo xtask`: the only entry points a person needs.
//!
//! - `start`: install what is missing, build, run Porta with a local bridge, print the URL.
//! - `test`:  every check and test in the repository (what CI runs).
//! - `bench`: the performance table (not a test; numbers, not pass/fail).
//! - `tidy`:  the shape of the code (layers, SQL in the store, file sizes); part of `test`.
//! - `ui`:    build the browser app into the target directory.
//! - `bridges`: build the static `porta-bridge` binaries that `/install.sh` hands out.
//! - `image`: build the `porta` container image (`porta:local`).
//! - `compose-test`: bring `docker-compose.yml` up with images built here and test it.
//! - `conformance-clients`: install the Python clients the conformance tests run; print
//!   the Python that has them (for `PORTA_TEST_PYTHON`).
//! - `container-image`: start the Docker engine and make the container tests' image; print
//!   its tag (for `PORTA_TEST_DOCKER_IMAGE`).
//! - `test-registry`: unpack Debian's docker-registry for the image tests; print the program
//!   (for `PORTA_TEST_DOCKER_REGISTRY`).

mod bench;
mod bridges;
mod build;
mod compose;
mod failures;
mod room;
mod start;
mod tidy;
mod ui;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("start") => start::run(),
        Some("test") => build::test(),
        Some("bench") => bench::run(&args[1..]),
        Some("tidy") => tidy::run(),
        Some("bridges") => bridges::build(args.get(1).is_some_and(|a| a == "--release"))
            .map(|dir| println!("static bridges built into {}", dir.display())),
        Some("image") => compose::image(true, "porta:local"),
        Some("compose-test") => compose::test(),
        Some("ui") => ui::build().map(|dir| println!("UI built into {}", dir.display())),
        Some("conformance-clients") => build::ensure_conformance_clients().map(|p| println!("{}", p.display())),
        Some("test-registry") => {
            compose::test_registry().map(|p| println!("{}", p.display())).ok_or_else(|| anyhow::anyhow!("no registry"))
        }
        Some("container-image") => match compose::container_test_image() {
            Some(tag) => {
                println!("{tag}");
                Ok(())
            }
            None => Err(anyhow::anyhow!("no container engine can run here")),
        },
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 start   build and run Porta with a local bridge (http://127.0.0.1:8111)\n  \
                 test    run every check and test (what CI runs)\n  \
                 bench   measure the relay and print a table\n  \
                 tidy    check the shape of the code (part of test)\n  \
                 bridges build the static bridges the backend hands out ([--release])\n  \
                 image   build the porta container image (porta:local)\n  \
                 compose-test  bring docker-compose.yml up with local images and test it\n  \
                 conformance-clients  install the conformance tests' Python clients, print their Python\n  \
                 container-image  start Docker and make the container tests' image, print its tag\n  \
                 test-registry  unpack the image tests' local registry, print its program\n  \
                 ui      build the browser app"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
