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
      guard let console else { return }
      if prefix == nil && console.colour {
        console.write(data)
        return
      }
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
    guard let console, let prefix else {
      console?.write(lines)
      return
    }
    var out = Data()
    for line in lines.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
      out.append(Data(prefix.utf8))
      out.append(contentsOf: line)
      out.append(UInt8(ascii: "\n"))
    }
    console.write(out)
  }

  public func line(_ text: String) { write(Data((text + "\n").utf8)) }
  public func header(_ text: String) { line("\u{1b}[36;1m\(text)\u{1b}[0;m") }
}
