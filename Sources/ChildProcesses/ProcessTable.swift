#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

/// What /proc says about processes: enough to tell a live process from a zombie and to find
/// everything in a session (a local job may start its own process groups, as `timeout` does).
public enum ProcessTable {
  public struct Entry: Equatable, Sendable {
    public var pid: Int32
    public var state: Character
    public var parent: Int32
    public var group: Int32
    public var session: Int32
  }

  /// Parses /proc/PID/stat; the command name may hold spaces and parentheses, so fields are
  /// counted from the last ')'.
  public static func parseStat(_ text: String) -> Entry? {
    guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")"),
      let pid = Int32(text[..<open].trimmedWhitespace())
    else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count >= 4, let state = fields[0].first, let parent = Int32(fields[1]),
      let group = Int32(fields[2]), let session = Int32(fields[3])
    else { return nil }
    return Entry(pid: pid, state: state, parent: parent, group: group, session: session)
  }

  public static func entry(_ pid: Int32) -> Entry? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else {
      return nil
    }
    return parseStat(text)
  }

  /// True while the process exists and is not a zombie.
  public static func isAlive(_ pid: Int32) -> Bool {
    guard let entry = entry(pid) else { return false }
    return entry.state != "Z" && entry.state != "X"
  }

  public static func all() -> [Entry] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return names.compactMap { Int32($0) }.compactMap { entry($0) }
  }

  /// Sends a signal to every live process of a session.
  @discardableResult
  public static func signalSession(_ session: Int32, _ signal: Int32) -> Int {
    var count = 0
    for entry in all() where entry.session == session && entry.state != "Z" {
      if kill(entry.pid, signal) == 0 { count += 1 }
    }
    return count
  }
}
