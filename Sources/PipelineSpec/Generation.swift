import AtomicFiles
public import Foundation

/// Where ci-gen's files lie: the spec, the .gitlab-ci.yml, the items list beside it, and the
/// project root (GitLab's CI_PROJECT_DIR) that the generated file names them from, so the
/// bytes do not depend on the working directory or on how the paths were typed.
public struct GenerationPaths: Equatable, Sendable {
  public var spec: String
  /// Nil: standard output.
  public var output: String?

  public init(spec: String, output: String?) {
    self.spec = spec
    self.output = output
  }

  /// The items list's name, beside the output (array mode).
  public var manifestName: String { "ci-items/\(URL(fileURLWithPath: spec).deletingPathExtension().lastPathComponent).tsv" }

  /// Where the output goes; with stdout, the spec's folder stands in (only to find the root).
  public var outputDirectory: URL {
    (output.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: spec)).standardizedFileURL.deletingLastPathComponent()
  }

  /// The repository holding the output, else the output's folder.
  public var projectRoot: URL { Self.repositoryRoot(containing: outputDirectory) ?? outputDirectory }

  public var specFromRoot: String { Self.relativePath(URL(fileURLWithPath: spec), from: projectRoot) }
  public var outputFromRoot: String? { output.map { Self.relativePath(URL(fileURLWithPath: $0), from: projectRoot) } }
  /// What the jobs read under $CI_PROJECT_DIR: the list beside the generated file.
  public var manifestFromRoot: String {
    let directory = Self.relativePath(outputDirectory, from: projectRoot)
    return directory == "." ? manifestName : "\(directory)/\(manifestName)"
  }

  /// The spec's plan, with the spec and the items list named from the project root.
  public func plan() throws -> PipelinePlan {
    var spec = try PipelineSpec.load(file: self.spec)
    spec.displayPath = specFromRoot
    return try PipelinePlan(spec: spec, manifest: manifestFromRoot)
  }

  /// The nearest folder at or above `directory` holding `.git` (a directory, or a
  /// worktree's file); nil outside any repository.
  static func repositoryRoot(containing directory: URL) -> URL? {
    var current = directory.standardizedFileURL
    while true {
      if FileManager.default.fileExists(atPath: current.appendingPathComponent(".git").path) { return current }
      let parent = current.deletingLastPathComponent()
      if parent.path == current.path { return nil }
      current = parent
    }
  }

  /// `path` relative to the folder `base`, with `..` where it lies outside.
  static func relativePath(_ path: URL, from base: URL) -> String {
    let target = path.standardizedFileURL.pathComponents
    let origin = base.standardizedFileURL.pathComponents
    var common = 0
    while common < min(target.count, origin.count) && target[common] == origin[common] { common += 1 }
    let parts = Array(repeating: "..", count: origin.count - common) + target[common...]
    return parts.isEmpty ? "." : parts.joined(separator: "/")
  }
}

/// The bodies of ci-gen's commands; its main parses arguments, prints what these return,
/// and turns a `SpecError` into one line.
public enum Generation {
  public enum Outcome: Equatable, Sendable {
    /// No `-o`: the pipeline for standard output.
    case printed(String)
    /// The files are written; the lines are ci-gen's notes and its summary, for stderr.
    case wrote(messages: [String])
  }

  /// `ci-gen generate`: the pipeline, and in array mode its items list beside it, written
  /// together (`AtomicFiles`: a failure never leaves a half-written, truncated or lone file
  /// under a final name).
  public static func generate(_ paths: GenerationPaths) throws -> Outcome {
    let plan = try paths.plan()
    var command = "ci-gen generate \(paths.specFromRoot)"
    if let output = paths.outputFromRoot { command += " -o \(output)" }
    let text = CIFileRenderer.render(plan, command: command)
    guard let output = paths.output else {
      guard plan.manifest() == nil else {
        throw SpecError(
          file: paths.spec, line: 0, column: 0,
          message: "\(plan.spec.items.count) items make the jobs read an items list beside the pipeline file; write it with -o FILE (stdout has no beside)")
      }
      return .printed(text)
    }
    var files = [(Data(text.utf8), output)]
    if let manifest = plan.manifest() {
      files.insert((Data(manifest.utf8), paths.outputDirectory.appendingPathComponent(paths.manifestName).path), at: 0)
    }
    do {
      try AtomicFiles.write(files, makeDirectories: true)
    } catch {
      throw SpecError(file: error.path, line: 0, column: 0, message: error.description)
    }
    return .wrote(messages: plan.notes.map { "note: \($0)" } + ["wrote \(output): \(plan.jobs.count) jobs in \(plan.stages.count) stages"])
  }

  /// `ci-gen check`: the spec's summary line and its notes.
  public static func check(spec: String) throws -> [String] {
    let plan = try GenerationPaths(spec: spec, output: nil).plan()
    let dropped = plan.jobs.filter { $0.needs == nil }.count
    let waiting = dropped > 0 ? ", \(dropped) jobs wait for earlier stages instead of listing >50 needs" : ""
    return ["\(spec): ok: \(plan.spec.items.count) items, \(plan.jobs.count) jobs in \(plan.stages.count) stages\(waiting)"]
      + plan.notes.map { "note: \($0)" }
  }
}
