// The embedded migrations are read at compile time: a migration added to the directory must
// rebuild the crate, which cargo does not notice by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
