#if canImport(Glibc)
  import Glibc
#endif
import CChildProcessShims

/// A local account's identity, as the kernel checks it.
public struct Credentials: Equatable, Sendable, Codable {
  public var name: String
  public var uid: UInt32
  public var gid: UInt32
  /// Supplementary groups (initgroups' list), so group-shared project space still works.
  public var groups: [UInt32]
  public var home: String
  public var shell: String

  /// The account from the password database, or nil when there is none.
  public static func of(account name: String) -> Credentials? {
    guard let entry = getpwnam(name) else { return nil }
    let uid = entry.pointee.pw_uid
    let gid = entry.pointee.pw_gid
    let home = String(cString: entry.pointee.pw_dir)
    let shell = String(cString: entry.pointee.pw_shell)
    var count: Int32 = 64
    var groups = [gid_t](repeating: 0, count: Int(count))
    if getgrouplist(name, gid, &groups, &count) < 0 {
      groups = [gid_t](repeating: 0, count: Int(count))
      guard getgrouplist(name, gid, &groups, &count) >= 0 else { return nil }
    }
    return Credentials(name: name, uid: uid, gid: gid, groups: Array(groups.prefix(Int(count))), home: home, shell: shell)
  }
}

extension ChildProcess {
  /// Starts the program open at `program` as `credentials` (which must not be root's),
  /// with `descriptors` handed over as 3, 4, ...; stdin, stdout and stderr are inherited.
  /// The child has dropped root for good before it runs a single instruction of the program.
  public static func start(
    as credentials: Credentials, program: Int32, arguments: [String], environment: [String: String],
    workingDirectory: String, descriptors: [Int32]
  ) throws -> ChildProcess {
    precondition(credentials.uid != 0, "a child started to drop root must not be root")
    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      argv.forEach { free($0) }
      envp.forEach { free($0) }
    }
    let pid = credentials.groups.withUnsafeBufferPointer { groups in
      descriptors.withUnsafeBufferPointer { fds in
        ci_spawn_as_user(
          program, argv, envp, credentials.uid, credentials.gid, groups.baseAddress, Int32(groups.count),
          workingDirectory, fds.baseAddress, Int32(fds.count))
      }
    }
    guard pid > 0 else {
      throw SpawnError(executable: arguments[0], reason: "as \(credentials.name): \(String(cString: strerror(errno)))")
    }
    return ChildProcess(pid: pid, stdoutFD: nil, stderrFD: nil)
  }
}
