// FoundationEssentials where there is one: the driver's processes stay small (no ICU).
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
    let descriptor = open(path, O_RDONLY | O_CLOEXEC | (asRoot ? O_NOFOLLOW : 0))
    guard descriptor >= 0 else {
      let reason = errno == ELOOP ? "it is a symlink, which a root phase does not follow" : String(cString: strerror(errno))
      throw DriverFailure.system("cannot read \(what) \(path): \(reason)")
    }
    defer { close(descriptor) }
    var info = stat()
    guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
      throw DriverFailure.system("\(what) \(path) is not a regular file")
    }
    if asRoot {
      if let problem = unsafeOwnership(info) { throw DriverFailure.system("\(what) \(path) \(problem)") }
      try checkDirectories(above: path, what: what)
    }
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

  /// Every directory from `/` down to the file's own: root's, and writable by others only
  /// with the sticky bit (as /tmp), where no one else can rename root's entries.
  public static func checkDirectories(above path: String, what: String) throws {
    var prefix = ""
    let components = path.split(separator: "/").dropLast()
    for directory in [""] + components.map(String.init) {
      prefix += directory.isEmpty ? "/" : (prefix == "/" ? directory : "/\(directory)")
      var info = stat()
      guard stat(prefix, &info) == 0 else {
        throw DriverFailure.system("cannot check \(prefix) above \(what) \(path): \(String(cString: strerror(errno)))")
      }
      if info.st_uid != 0 || (info.st_mode & 0o022 != 0 && info.st_mode & UInt32(S_ISVTX) == 0) {
        throw DriverFailure.system("\(what) \(path) is under \(prefix), which a non-root account can change; keep it in root-owned directories")
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
