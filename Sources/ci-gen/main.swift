import ArgumentParser
import AtomicFiles
import Foundation
import PipelineSpec

/// ci-gen: a pipeline spec in, a valid, limit-aware .gitlab-ci.yml out.
struct CIGen: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ci-gen",
    abstract: "Turn a pipeline spec (docs/ci-gen.md) into a .gitlab-ci.yml for the ci-slurm executor.",
    subcommands: [Generate.self, Check.self, Graph.self, Explain.self, Template.self])
}

struct SpecArgument: ParsableArguments {
  @Argument(help: "The pipeline spec (YAML).") var spec: String
  @Option(name: .shortAndLong, help: "Where the .gitlab-ci.yml goes (default: stdout); required above max_jobs_per_stage items, whose list goes beside it.") var output: String?

  /// The items list's name, beside the output (array mode).
  var manifestName: String { "ci-items/\(URL(fileURLWithPath: spec).deletingPathExtension().lastPathComponent).tsv" }

  /// Where the output goes; with stdout, the spec's folder stands in (only to find the root).
  var outputDirectory: URL {
    (output.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: spec)).standardizedFileURL.deletingLastPathComponent()
  }

  /// GitLab's CI_PROJECT_DIR: the repository holding the output, else the output's folder.
  var projectRoot: URL { repositoryRoot(containing: outputDirectory) ?? outputDirectory }

  /// Paths relative to the project root, so the bytes do not depend on the working
  /// directory or on how the paths were typed.
  var specFromRoot: String { relativePath(URL(fileURLWithPath: spec), from: projectRoot) }
  var outputFromRoot: String? { output.map { relativePath(URL(fileURLWithPath: $0), from: projectRoot) } }
  /// What the jobs read under $CI_PROJECT_DIR: the list beside the generated file.
  var manifestFromRoot: String {
    let directory = relativePath(outputDirectory, from: projectRoot)
    return directory == "." ? manifestName : "\(directory)/\(manifestName)"
  }

  func plan() throws -> PipelinePlan {
    var spec = try PipelineSpec.load(file: self.spec)
    spec.displayPath = specFromRoot
    return try PipelinePlan(spec: spec, manifest: manifestFromRoot)
  }
}

/// The nearest folder at or above `directory` holding `.git` (a directory, or a
/// worktree's file); nil outside any repository.
func repositoryRoot(containing directory: URL) -> URL? {
  var current = directory.standardizedFileURL
  while true {
    if FileManager.default.fileExists(atPath: current.appendingPathComponent(".git").path) { return current }
    let parent = current.deletingLastPathComponent()
    if parent.path == current.path { return nil }
    current = parent
  }
}

/// `path` relative to the folder `base`, with `..` where it lies outside.
func relativePath(_ path: URL, from base: URL) -> String {
  let target = path.standardizedFileURL.pathComponents
  let origin = base.standardizedFileURL.pathComponents
  var common = 0
  while common < min(target.count, origin.count) && target[common] == origin[common] { common += 1 }
  let parts = Array(repeating: "..", count: origin.count - common) + target[common...]
  return parts.isEmpty ? "." : parts.joined(separator: "/")
}

/// Runs a subcommand body, turning spec errors into one line and exit 1.
func reporting(_ body: () throws -> Void) throws {
  do {
    try body()
  } catch let error as SpecError {
    FileHandle.standardError.write(Data("ci-gen: \(error)\n".utf8))
    throw ExitCode(1)
  }
}

/// Writes the pipeline and its items list together (`AtomicFiles`): a failure never leaves
/// a half-written, truncated or lone file under a final name.
func writeAtomically(_ files: [(text: String, path: String)]) throws {
  do {
    try AtomicFiles.write(files.map { (Data($0.text.utf8), $0.path) }, makeDirectories: true)
  } catch {
    throw SpecError(file: error.path, line: 0, column: 0, message: error.description)
  }
}

struct Generate: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Write the .gitlab-ci.yml (same spec, same bytes).")
  @OptionGroup var arguments: SpecArgument

  func run() throws {
    try reporting {
      let plan = try arguments.plan()
      var command = "ci-gen generate \(arguments.specFromRoot)"
      if let output = arguments.outputFromRoot { command += " -o \(output)" }
      let text = CIFileRenderer.render(plan, command: command)
      if let output = arguments.output {
        var files = [(text: text, path: output)]
        if let manifest = plan.manifest() {
          files.insert((manifest, arguments.outputDirectory.appendingPathComponent(arguments.manifestName).path), at: 0)
        }
        try writeAtomically(files)
        for note in plan.notes { FileHandle.standardError.write(Data("ci-gen: note: \(note)\n".utf8)) }
        FileHandle.standardError.write(Data("ci-gen: wrote \(output): \(plan.jobs.count) jobs in \(plan.stages.count) stages\n".utf8))
      } else if plan.manifest() != nil {
        throw SpecError(
          file: arguments.spec, line: 0, column: 0,
          message: "\(plan.spec.items.count) items make the jobs read an items list beside the pipeline file; write it with -o FILE (stdout has no beside)")
      } else {
        FileHandle.standardOutput.write(Data(text.utf8))
      }
    }
  }
}

struct Check: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Validate the spec and its plan; write nothing.")
  @Argument(help: "The pipeline spec (YAML).") var spec: String

  func run() throws {
    try reporting {
      let plan = try SpecArgument.parse([spec]).plan()
      let dropped = plan.jobs.filter { $0.needs == nil }.count
      print("\(spec): ok: \(plan.spec.items.count) items, \(plan.jobs.count) jobs in \(plan.stages.count) stages\(dropped > 0 ? ", \(dropped) jobs wait for earlier stages instead of listing >50 needs" : "")")
      for note in plan.notes { print("note: \(note)") }
    }
  }
}

struct Graph: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print the job graph as Mermaid (default) or DOT.")
  @Argument(help: "The pipeline spec (YAML).") var spec: String
  @Option(help: "mermaid or dot") var format: String = "mermaid"

  func run() throws {
    guard ["mermaid", "dot"].contains(format) else { throw ValidationError("--format is mermaid or dot, not \(format)") }
    try reporting {
      let plan = try SpecArgument.parse([spec]).plan()
      print(format == "dot" ? GraphRenderer.dot(plan) : GraphRenderer.mermaid(plan), terminator: "")
    }
  }
}

struct Explain: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print, per job, the sbatch line the executor will run.")
  @Argument(help: "The pipeline spec (YAML).") var spec: String

  func run() throws {
    try reporting {
      let plan = try SpecArgument.parse([spec]).plan()
      for line in try SbatchExplanation.lines(for: plan) { print(line) }
    }
  }
}

struct Template: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print ci-templates/slurm.yml (hidden .slurm jobs to extend).")
  func run() throws { print(TemplateRenderer.slurmTemplates(), terminator: "") }
}

CIGen.main()
