#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shredlog_bin::fuzzing::request_body(data);
});
