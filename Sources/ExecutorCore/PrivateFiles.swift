import AtomicFiles
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
#if canImport(Glibc)
  import Glibc
#endif

/// Files and directories only their owner may read: staged scripts hold secrets. With
/// run_as this runs as the account, so what it makes is the account's and nothing here
/// ever acts with more than the account's rights.
public enum PrivateFiles {
  /// Creates (or tightens) a private directory; a symlink in its place is refused.
  public static func makeDirectory(_ path: String, mode: Int = 0o700) throws {
    let manager = FileManager.default
    var info = stat()
    if lstat(path, &info) == 0 {
      guard info.st_mode & S_IFMT == S_IFDIR else { throw DriverFailure.system("\(path) exists and is not a directory") }
    } else {
      try manager.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    try manager.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
  }

  /// Atomically (`AtomicFiles`), with exactly this mode.
  public static func write(_ data: Data, to path: String, mode: Int = 0o600) throws {
    do {
      try AtomicFiles.write(data, to: path, mode: mode_t(mode))
    } catch {
      throw DriverFailure.system(error.description)
    }
  }
}
