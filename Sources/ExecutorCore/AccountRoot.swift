public import ChildProcesses
#if canImport(Glibc)
  import Glibc
#endif

/// The only directories root makes for a run-as job: the data root and `users/` (root's,
/// 0711, so accounts can pass through but not list or write), and the account's own
/// `users/<account>` (0700, handed to the account). Each is made and checked through a
/// descriptor opened without following symlinks, inside a directory only root can write,
/// so no account can point root anywhere else. Everything below is the account's
/// business, done by the phase after it has become the account.
public enum AccountRoot {
  public static func path(dataRoot: String, account: Credentials) -> String { "\(dataRoot)/users/\(account.name)" }

  public static func prepare(dataRoot: String, for account: Credentials) throws {
    guard dataRoot.hasPrefix("/") else { throw DriverFailure.system("data_root \(dataRoot) must be an absolute path") }
    // The data root's parents: root's all the way up, resolved, so that no account can
    // swap a directory above the one root works in.
    let root = try directory(try TrustedFile.resolvedDirectories(dataRoot, what: "the data root"), in: AT_FDCWD, owner: nil, mode: 0o711)
    defer { close(root) }
    let users = try directory("users", in: root, owner: nil, mode: 0o711, shown: "\(dataRoot)/users")
    defer { close(users) }
    let own = try directory(account.name, in: users, owner: account, mode: 0o700, shown: path(dataRoot: dataRoot, account: account))
    close(own)
  }

  /// Makes (or finds) `name` in `parent` and returns it open; `owner` nil means root's.
  static func directory(_ name: String, in parent: Int32, owner: Credentials?, mode: mode_t, shown: String? = nil) throws -> Int32 {
    let shown = shown ?? name
    let created = mkdirat(parent, name, mode) == 0
    if !created && errno != EEXIST {
      throw DriverFailure.system("cannot create \(shown): \(String(cString: strerror(errno)))")
    }
    let descriptor = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    guard descriptor >= 0 else {
      let reason = errno == ELOOP || errno == ENOTDIR ? "it is not a directory (a symlink?)" : String(cString: strerror(errno))
      throw DriverFailure.system("cannot open \(shown): \(reason)")
    }
    var info = stat()
    guard fstat(descriptor, &info) == 0 else {
      close(descriptor)
      throw DriverFailure.system("cannot check \(shown): \(String(cString: strerror(errno)))")
    }
    let expectedOwner = owner?.uid ?? 0
    if info.st_uid != expectedOwner {
      // A directory root just made is root's until it is handed over; any other owner
      // means someone else made it first.
      guard created, owner != nil else {
        close(descriptor)
        throw DriverFailure.system("\(shown) belongs to uid \(info.st_uid), not to \(owner?.name ?? "root"); remove it or fix its owner")
      }
    }
    if let owner, info.st_uid != owner.uid || info.st_gid != owner.gid {
      guard fchown(descriptor, owner.uid, owner.gid) == 0 else {
        close(descriptor)
        throw DriverFailure.system("cannot hand \(shown) to \(owner.name): \(String(cString: strerror(errno)))")
      }
    }
    guard fchmod(descriptor, mode) == 0 else {
      close(descriptor)
      throw DriverFailure.system("cannot set the mode of \(shown): \(String(cString: strerror(errno)))")
    }
    return descriptor
  }
}
