//! Thin entry point: everything lives in the library.

fn main() -> std::process::ExitCode {
    // The binary owns the process, so it (not the library) chooses rustls' crypto
    // provider: aws-lc-rs, as the signer. (With only aws-lc-rs compiled in, rustls would
    // also pick it by itself; a library user may have installed another one.)
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tessera::cli::main()
}
