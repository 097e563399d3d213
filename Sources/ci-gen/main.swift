import ArgumentParser
import Foundation
import PipelineSpec
import Scheduling
import Slurm

/// ci-gen: a pipeline spec in, a valid, limit-aware .gitlab-ci.yml out.
struct CIGen: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ci-gen",
    abstract: "Turn a pipeline spec (docs/ci-gen.md) into a .gitlab-ci.yml for the ci-slurm executor.",
    subcommands: [Generate.self, Check.self, Graph.self, Explain.self, Template.self])
}

struct SpecArgument: ParsableArguments {
  @Argument(help: "The pipeline spec (YAML).") var spec: String
  @Option(name: .shortAndLong, help: "Where the .gitlab-ci.yml goes (default: stdout).") var output: String?

  var manifestPath: String { "ci-items/\(URL(fileURLWithPath: spec).deletingPathExtension().lastPathComponent).tsv" }

  func plan() throws -> PipelinePlan {
    let spec = try PipelineSpec.load(file: self.spec)
    return try PipelinePlan(spec: spec, manifest: manifestPath)
  }
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

/// Writes beside the target and renames, so a failure never leaves a half-written or
/// truncated file under the final name.
func writeAtomically(_ text: String, to path: String) throws {
  let url = URL(fileURLWithPath: path)
  try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
  let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
  try Data(text.utf8).write(to: temporary)
  guard rename(temporary.path, path) == 0 else {
    try? FileManager.default.removeItem(at: temporary)
    throw SpecError(file: path, line: 0, column: 0, message: "cannot write the output")
  }
}

struct Generate: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Write the .gitlab-ci.yml (same spec, same bytes).")
  @OptionGroup var arguments: SpecArgument

  func run() throws {
    try reporting {
      let plan = try arguments.plan()
      var command = "ci-gen generate \(arguments.spec)"
      if let output = arguments.output { command += " -o \(output)" }
      let text = CIFileRenderer.render(plan, command: command)
      if let output = arguments.output {
        if let manifest = plan.manifest() {
          let directory = URL(fileURLWithPath: output).deletingLastPathComponent().path
          try writeAtomically(manifest, to: "\(directory)/\(arguments.manifestPath)")
        }
        try writeAtomically(text, to: output)
        for note in plan.notes { FileHandle.standardError.write(Data("ci-gen: note: \(note)\n".utf8)) }
        FileHandle.standardError.write(Data("ci-gen: wrote \(output): \(plan.jobs.count) jobs in \(plan.stages.count) stages\n".utf8))
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
      print("# The executor adds the admin's default_parameters (settings) before each job's own; <...> are per-job paths.")
      for job in plan.jobs {
        var request = try JobRequest.parse(job.schedulerParameters)
        if !request.has("time") { request.options.append(.init("time", String((job.timeoutSeconds + 59) / 60))) }
        let batch = BatchJob(
          name: "ci-<project-slug>-<CI_JOB_ID>", wrapperScript: "<data_root>/jobs/<CI_JOB_ID>/build_script-1/wrapper.sh",
          directory: "<data_root>/jobs/<CI_JOB_ID>/build_script-1", workingDirectory: "<data_root>/builds/<CI_JOB_ID>",
          request: request, environment: [:])
        print("\(job.name):")
        print("  " + SlurmScheduler.sbatchArguments(for: batch).map(ShellWords.quote).joined(separator: " "))
      }
    }
  }
}

struct Template: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Print ci-templates/slurm.yml (hidden .slurm jobs to extend).")
  func run() throws { print(TemplateRenderer.slurmTemplates(), terminator: "") }
}

CIGen.main()
