//! Slack's workspace export turned into hearth's export format.
pub fn convert(_zip: &std::path::Path, _out: &std::path::Path) -> Result<(), super::ArchiveError> {
    Ok(())
}
