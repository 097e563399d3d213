#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
#if canImport(Glibc)
  import Glibc
#endif

/// Reads the files a root phase acts on (settings, the job payload, the signing keys, the
/// runner's stage script). As root, such a file must be root's and writable by nobody
/// else, and so must every directory above it, or a CI user could have written it; it is
/// opened without following a last symlink and checked through the descriptor it is read
/// from, so it cannot be swapped between the check and the read.
public enum TrustedFile {
  public static func read(_ path: String, what: String, asRoot: Bool = geteuid() == 0) throws -> Data {
    var info = stat()
    if asRoot, lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFLNK {
      throw DriverFailure.system("cannot read \(what) \(path): it is a symlink, which a root phase does not follow")
    }
    // The directories are checked and the file opened on the resolved path, so no link
    // above it can be re-pointed in between.
    let opened = asRoot ? try resolvedDirectories(path, what: what) : path
    let descriptor = open(opened, O_RDONLY | O_CLOEXEC | (asRoot ? O_NOFOLLOW : 0))
    guard descriptor >= 0 else {
      let reason = errno == ELOOP ? "it is a symlink, which a root phase does not follow" : String(cString: strerror(errno))
      throw DriverFailure.system("cannot read \(what) \(path): \(reason)")
    }
    defer { close(descriptor) }
    guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
      throw DriverFailure.system("\(what) \(path) is not a regular file")
    }
    if asRoot, let problem = unsafeOwnership(info) { throw DriverFailure.system("\(what) \(path) \(problem)") }
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw DriverFailure.system("cannot read \(what) \(path): \(String(cString: strerror(errno)))")
      }
      if count == 0 { break }
      data.append(contentsOf: buffer[0..<count])
    }
    return data
  }

  /// `path` with its directory resolved (no symlink left above the file), after checking
  /// every directory from `/` down: root's, and writable by others only with the sticky
  /// bit (as /tmp), where no one else can rename root's entries.
  public static func resolvedDirectories(_ path: String, what: String) throws -> String {
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { path[..<$0].isEmpty ? "/" : String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard let resolved = realpath(directory, nil) else {
      throw DriverFailure.system("cannot check the directory of \(what) \(path): \(String(cString: strerror(errno)))")
    }
    let real = String(cString: resolved)
    free(resolved)
    try checkDirectories(real, what: "\(what) \(path)")
    return real == "/" ? "/\(name)" : "\(real)/\(name)"
  }

  /// `directory` (already resolved) and each directory above it.
  public static func checkDirectories(_ directory: String, what: String) throws {
    var prefix = ""
    for component in [""] + directory.split(separator: "/").map(String.init) {
      prefix += component.isEmpty ? "/" : (prefix == "/" ? component : "/\(component)")
      var info = stat()
      guard lstat(prefix, &info) == 0 else {
        throw DriverFailure.system("cannot check \(prefix) above \(what): \(String(cString: strerror(errno)))")
      }
      if info.st_uid != 0 || (info.st_mode & 0o022 != 0 && info.st_mode & UInt32(S_ISVTX) == 0) {
        throw DriverFailure.system("\(what) is under \(prefix), which a non-root account can change; keep it in root-owned directories")
      }
    }
  }

  /// Why a file root reads is not safe to trust, or nil.
  static func unsafeOwnership(_ info: stat) -> String? {
    if info.st_uid != 0 { return "belongs to uid \(info.st_uid), not root" }
    if info.st_mode & 0o022 != 0 { return "is writable by group or others (chmod go-w)" }
    return nil
  }
}
