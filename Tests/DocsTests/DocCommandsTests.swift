// The marker: a fenced block whose info string is `sh runnable` is run by this test (in a
// scratch copy of the tree, the build's products first on PATH, `SEEDS=0-9`); `sh norun` is
// not run (it needs a GitLab instance or root on a real site, is a synopsis or fragment, is a
// benchmark (minutes, a release build), or is what the tests run anyway: scripts/test, and
// scripts/main at its end).
// Any other sh/bash/shell/console block in README.md, docs/*.md or examples/*/README.md
// fails this test, so new docs cannot skip the decision.
import Foundation
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// One fenced shell block of the docs.
struct DocBlock: Sendable, CustomTestStringConvertible {
  enum Marker: Sendable, Equatable { case runnable, norun, unmarked }
  var file: String
  var line: Int
  var marker: Marker
  var script: String
  var testDescription: String { "\(file):\(line)" }
}

enum Docs {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
  static let bin = ProcessInfo.processInfo.environment["CI_SLURM_BIN"] ?? "\(root)/.build/debug"
  static let shellLanguages: Set<String> = ["sh", "bash", "shell", "console", "zsh"]

  /// README.md, docs/*.md and examples/*/README.md, as paths from the root.
  static var files: [String] {
    let manager = FileManager.default
    var files = ["README.md"]
    let docs = (try? manager.contentsOfDirectory(atPath: "\(root)/docs")) ?? []
    files += docs.filter { $0.hasSuffix(".md") }.sorted().map { "docs/\($0)" }
    let examples = (try? manager.contentsOfDirectory(atPath: "\(root)/examples")) ?? []
    files += examples.sorted().map { "examples/\($0)/README.md" }.filter { manager.fileExists(atPath: "\(root)/\($0)") }
    return files
  }

  static let blocks: [DocBlock] = files.flatMap { file in
    shellBlocks(in: (try? String(contentsOfFile: "\(root)/\(file)", encoding: .utf8)) ?? "", file: file)
  }

  /// The fenced blocks whose language is a shell, with their marker (the info string's
  /// second word). Indented fences (in list items) lose their indentation.
  static func shellBlocks(in text: String, file: String) -> [DocBlock] {
    var blocks: [DocBlock] = []
    var open: (line: Int, indent: Int, words: [Substring], lines: [String])?
    for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let indent = raw.prefix { $0 == " " }.count
      let trimmed = raw.dropFirst(indent)
      if var block = open {
        if trimmed.hasPrefix("```") && trimmed.dropFirst(3).allSatisfy({ $0 == "`" || $0 == " " }) {
          if let language = block.words.first, shellLanguages.contains(String(language)) {
            let marker: DocBlock.Marker =
              switch block.words.count > 1 ? String(block.words[1]) : "" {
              case "runnable": .runnable
              case "norun": .norun
              default: .unmarked
              }
            blocks.append(DocBlock(file: file, line: block.line, marker: marker, script: block.lines.joined(separator: "\n")))
          }
          open = nil
        } else {
          block.lines.append(String(raw.dropFirst(min(indent, block.indent))))
          open = block
        }
      } else if trimmed.hasPrefix("```") {
        open = (index + 1, indent, trimmed.dropFirst(3).split(separator: " "), [])
      }
    }
    return blocks
  }

  /// Runs a block as one bash script (`set -e -o pipefail`: any failing line fails it) in a
  /// fresh copy of the tree, as a user who built and put the build on PATH would.
  static func run(_ block: DocBlock) throws -> (status: Int32, output: String) {
    let scratch = try scratchCopy()
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    var env = ProcessInfo.processInfo.environment
    env["PATH"] = "\(scratch)/.build/debug:\(env["PATH"] ?? "/usr/bin:/bin")"
    // Data roots (`${SCRATCH:-$HOME/scratch}`) land in the copy, not the tester's home.
    env["HOME"] = "\(scratch)/home"
    env["SEEDS"] = "0-9"
    if getuid() == 0 { env["CI_SLURM_SETTINGS"] = try rootSettings(in: scratch) }
    // Beside the copy, not in it: the block sees only the tree.
    let log = "\(scratch).log"
    defer { try? FileManager.default.removeItem(atPath: log) }
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    let process = Process()
    // A hang guard, not a timing check: timeout kills the block's whole process group.
    process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    process.arguments = ["900", "bash", "-c", "set -e -o pipefail\n" + block.script]
    process.currentDirectoryURL = URL(fileURLWithPath: scratch)
    process.environment = env
    process.standardOutput = output
    process.standardError = output
    try process.run()
    process.waitUntilExit()
    try output.close()
    return (process.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
  }

  /// The tree's files (tracked and new, not ignored) copied to a temp dir, with
  /// `.build/debug` linked to the build, so commands leave nothing in the tree.
  static func scratchCopy() throws -> String {
    let scratch = NSTemporaryDirectory() + "docs-test-" + UUID().uuidString.prefix(8)
    let manager = FileManager.default
    try manager.createDirectory(atPath: "\(scratch)/.build", withIntermediateDirectories: true)
    try manager.createDirectory(atPath: "\(scratch)/home", withIntermediateDirectories: true)
    try manager.createSymbolicLink(atPath: "\(scratch)/.build/debug", withDestinationPath: bin)
    for path in try listedFiles() where manager.fileExists(atPath: "\(root)/\(path)") {
      let target = "\(scratch)/\(path)"
      try manager.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try manager.copyItem(atPath: "\(root)/\(path)", toPath: target)
    }
    return scratch
  }

  static func listedFiles() throws -> [String] {
    let process = Process()
    let pipe = Pipe()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).split(separator: "\0").map(String.init)
  }

  /// As root the driver runs CI jobs only when the settings say allow_root (README).
  static func rootSettings(in scratch: String) throws -> String {
    let path = "\(scratch)/settings.toml"
    try "allow_root = true\n".write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }
}

@Suite(.tags(.medium)) struct DocMarkerTests {
  @Test func everyShellBlockIsMarkedRunnableOrNorun() {
    let unmarked = Docs.blocks.filter { $0.marker == .unmarked }.map(\.testDescription)
    #expect(unmarked == [], "mark these fenced blocks `sh runnable` (run by this test) or `sh norun`")
  }

  @Test func theDocsHaveRunnableBlocks() {
    #expect(Docs.blocks.contains { $0.marker == .runnable })
  }

  @Test func theMarkerIsTheInfoStringsSecondWord() {
    let text = """
      ```sh runnable
      echo one
      ```
      ```yaml
      a: 1
      ```
        ```bash norun
        rm -rf /
        ```
      ```sh
      echo unmarked
      ```
      """
    let blocks = Docs.shellBlocks(in: text, file: "t.md")
    #expect(blocks.map(\.marker) == [.runnable, .norun, .unmarked])
    #expect(blocks.map(\.line) == [1, 7, 10])
    #expect(blocks[1].script == "rm -rf /")
  }

  @Test func aFailingLineFailsTheBlock() throws {
    let result = try Docs.run(DocBlock(file: "t.md", line: 1, marker: .runnable, script: "false\ntrue"))
    #expect(result.status != 0)
  }
}

@Suite(.tags(.large), .serialized) struct DocCommandTests {
  @Test(arguments: Docs.blocks.filter { $0.marker == .runnable })
  func runnableBlockRuns(block: DocBlock) throws {
    #expect(FileManager.default.isExecutableFile(atPath: "\(Docs.bin)/ci-local"), "build first: swift build")
    let result = try Docs.run(block)
    #expect(result.status == 0, "\(block.testDescription) failed:\n\(block.script)\n--- output (end) ---\n\(result.output.suffix(4000))")
  }
}
