//! The pinned real-world modules.
use anyhow::Result;
pub fn run(_args: &[String]) -> Result<()> {
    anyhow::bail!("not yet")
}
