#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tessera::fuzzing::exchange_body(data, true);
});
