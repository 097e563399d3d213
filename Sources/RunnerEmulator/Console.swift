public import Foundation
import Synchronization

/// ci-local's live output, shared by every job: one mutex so lines never interleave, and
/// colour (GitLab's ANSI codes, ci-local's own) only when it goes to a terminal or is asked
/// for, so a redirected log reads as plain text.
public final class Console: Sendable {
  public let colour: Bool
  private let output: Mutex<FileHandle>

  public init(colour: Bool, output: FileHandle = .standardOutput) {
    self.colour = colour
    self.output = Mutex(output)
  }

  public func write(_ data: Data) {
    let bytes = colour ? data : Console.stripped(data)
    output.withLock { $0.write(bytes) }
  }

  public func line(_ text: String) { write(Data((text + "\n").utf8)) }

  /// Without ANSI escape sequences (ESC [ parameters, one final letter).
  static func stripped(_ data: Data) -> Data {
    var out = Data(capacity: data.count)
    var index = data.startIndex
    while index < data.endIndex {
      if data[index] == 0x1b, data.index(after: index) < data.endIndex, data[data.index(after: index)] == UInt8(ascii: "[") {
        var end = data.index(index, offsetBy: 2)
        while end < data.endIndex, !(0x40...0x7e).contains(data[end]) { end = data.index(after: end) }
        index = end < data.endIndex ? data.index(after: end) : end
        continue
      }
      out.append(data[index])
      index = data.index(after: index)
    }
    return out
  }

  /// docker compose's look: each job's prefix in its own colour.
  public func prefix(_ name: String, index: Int) -> String {
    let colours = [36, 33, 32, 35, 34, 31]
    return colour ? "\u{1b}[\(colours[index % colours.count])m[\(name)]\u{1b}[0m " : "[\(name)] "
  }
}

/// A job's log: a file (GitLab's bytes), and live on the console. With one job at a time
/// the console gets the bytes as they come; with several, whole lines, each after a
/// `[job name]` prefix, so interleaved jobs stay readable.
public final class JobLog: Sendable {
  private struct State {
    let file: FileHandle
    /// A line still without its newline (prefixed mode or colour stripping needs whole
    /// lines; an escape sequence may be split across reads).
    var pending = Data()
  }

  private let state: Mutex<State>
  let console: Console?
  let prefix: String?
  public let path: String

  public init(path: String, console: Console?, prefix: String? = nil) throws {
    FileManager.default.createFile(atPath: path, contents: nil)
    guard let handle = FileHandle(forWritingAtPath: path) else { throw Pipeline.Error(message: "cannot write \(path)") }
    state = Mutex(State(file: handle))
    self.console = console
    self.prefix = prefix
    self.path = path
  }

  public func write(_ data: Data) {
    state.withLock { state in
      state.file.write(data)
      guard console != nil else { return }
      // Whole lines only, so a section marker is rendered whole (a partial line shows when
      // its newline comes, or at the end).
      state.pending.append(data)
      guard let last = state.pending.lastIndex(of: UInt8(ascii: "\n")) else { return }
      emit(state.pending[...last])
      state.pending = Data(state.pending[state.pending.index(after: last)...])
    }
  }

  /// The last line, when the job's output did not end with a newline.
  public func finish() {
    state.withLock { state in
      if !state.pending.isEmpty { emit(state.pending + Data("\n".utf8)) }
      state.pending = Data()
    }
  }

  private func emit(_ lines: Data) {
    guard let console else { return }
    var out = Data()
    for line in lines.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
      guard let shown = LogSectionMarkers.render(line) else { continue }
      if let prefix { out.append(Data(prefix.utf8)) }
      out.append(shown)
      out.append(UInt8(ascii: "\n"))
    }
    console.write(out)
  }

  public func line(_ text: String) { write(Data((text + "\n").utf8)) }
  public func header(_ text: String) { line("\u{1b}[36;1m\(text)\u{1b}[0;m") }
}

/// GitLab's collapsible-section markers as its job page shows them, for a terminal: a
/// start marker becomes its title after a fold sign (`▸` folded, `▾` open), an end marker
/// no line at all. A terminal cannot unfold later, so a folded section's lines are still
/// shown; the job's log file keeps GitLab's bytes.
enum LogSectionMarkers {
  static let start = Data("section_start:".utf8)
  static let end = Data("section_end:".utf8)

  /// The line to show instead of `line` (no newline), or nil for none.
  static func render(_ line: Data) -> Data? {
    if let marker = line.range(of: end), line[line.startIndex..<marker.lowerBound].allSatisfy(isMarkerPrefix) { return nil }
    guard let marker = line.range(of: start), line[line.startIndex..<marker.lowerBound].allSatisfy(isMarkerPrefix) else {
      return line
    }
    // section_start:<time>:<name>[options]\r\e[0K<title>
    guard let carriage = line[marker.upperBound...].firstIndex(of: UInt8(ascii: "\r")) else { return line }
    let header = line[marker.upperBound..<carriage]
    var title = Data(line[line.index(after: carriage)...])
    if title.starts(with: Data("\u{1b}[0K".utf8)) { title.removeFirst(4) }
    let folded = header.range(of: Data("collapsed=true".utf8)) != nil
    return Data((folded ? "▸ " : "▾ ").utf8) + title
  }

  /// What may come before a marker on its line: erase-line (`\e[0K`).
  static func isMarkerPrefix(_ byte: UInt8) -> Bool { byte == 0x1b || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "0") || byte == UInt8(ascii: "K") }
}
