//! The data directory is private to its owner: the directory 0700, every file in it 0600 (the SQLite
//! database holds every tenant's users and token hashes; `token` and `engine-key` are credentials).
//!
//! A directory made by an older version (or by hand) with looser modes is tightened at start rather than
//! refused: the owner asked for this directory, and tightening is what they would do by hand; a directory
//! we cannot tighten (not ours) is refused with the reason.

use std::io::Write;
use std::path::Path;

/// Create `dir` (mode 0700) or tighten it: the directory to 0700, each regular file in it to owner-only.
pub fn prepare(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let tighten = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(|e| {
                format!(
                    "cannot make {} private to its owner (mode {mode:o}): {e}",
                    p.display()
                )
            })
        };
        tighten(dir, 0o700)?;
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read data directory {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            // Not followed: a symlink's mode is not its target's, and a subdirectory is not ours to rewrite.
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_file() && mode & 0o077 != 0 {
                tighten(&path, mode & 0o700 | 0o600)?;
            }
        }
    }
    Ok(())
}

/// Create `file` with `content` (and a newline), readable and writable by its owner only; fails if it exists.
pub fn create_private(file: &Path, content: &str) -> std::io::Result<()> {
    let mut f = options().create_new(true).open(file)?;
    f.write_all(content.as_bytes())?;
    f.write_all(b"\n")
}

/// Write `file` (created or replaced), readable and writable by its owner only.
pub fn write_private(file: &Path, content: &str) -> std::io::Result<()> {
    let mut f = options().create(true).truncate(true).open(file)?;
    set_private(file)?;
    f.write_all(content.as_bytes())
}

/// Create `file` empty (mode 0600) if missing, or make it owner-only: SQLite then gives its journal and
/// WAL files the same mode.
pub fn touch_private(file: &Path) -> std::io::Result<()> {
    options().create(true).truncate(false).open(file)?;
    set_private(file)
}

fn options() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

fn set_private(_file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(_file, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_loose_directory_and_its_files_are_tightened() {
        let dir = std::env::temp_dir().join(format!("scim-private-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("dynamodb.sqlite"), "x").unwrap();
        std::fs::set_permissions(
            dir.join("dynamodb.sqlite"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::write(dir.join("endpoint"), "x").unwrap();
        std::fs::set_permissions(dir.join("endpoint"), std::fs::Permissions::from_mode(0o666))
            .unwrap();
        std::fs::set_permissions(dir.join("sub"), std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("dynamodb.sqlite")), 0o600);
        assert_eq!(mode(&dir.join("endpoint")), 0o600);
        assert_eq!(
            mode(&dir.join("sub")),
            0o755,
            "subdirectories are left alone (the directory above is 0700)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_written_owner_only_even_over_loose_ones() {
        let dir = std::env::temp_dir().join(format!("scim-private-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("endpoint");
        std::fs::write(&f, "old old old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&f, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
        assert_eq!(mode(&f), 0o600);
        let db = dir.join("db.sqlite");
        touch_private(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        create_private(&dir.join("k"), "s").unwrap();
        assert_eq!(mode(&dir.join("k")), 0o600);
        assert!(
            create_private(&dir.join("k"), "t").is_err(),
            "create_private never overwrites"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
