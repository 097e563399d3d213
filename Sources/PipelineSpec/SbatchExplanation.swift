import SbatchModel

/// `ci-gen explain`: per job, the sbatch line the executor will run for its build_script,
/// built by the executor's own pieces (the policy's time limit, `JobLayout`,
/// `SbatchCommand`) with placeholders where the paths depend on the CI job.
public enum SbatchExplanation {
  public static let header =
    "# The executor adds the admin's default_parameters (settings) before each job's own; <...> are per-job paths."

  public static func lines(for plan: PipelinePlan) throws -> [String] {
    let layout = JobLayout(root: "<data_root>", jobID: "<CI_JOB_ID>")
    let directory = layout.stageDirectory("build_script", attempt: 1)
    var lines = [header]
    for job in plan.jobs {
      let request: JobRequest
      do {
        // A site without admin settings: what the driver adds is the CI timeout's minutes.
        request = try OptionPolicy().request(
          defaults: JobRequest(), user: JobRequest.parse(job.schedulerParameters), timeoutSeconds: job.timeoutSeconds)
      } catch let error as JobRequest.ParseError {
        throw SpecError(file: plan.spec.displayPath, line: 0, column: 0, message: "\(job.name): \(error.message)")
      }
      let words = SbatchCommand.arguments(
        jobName: JobLayout.schedulerJobName(projectSlug: "<project-slug>", jobID: layout.jobID),
        script: JobFiles.wrapper(in: directory), directory: directory, workingDirectory: layout.buildsDirectory,
        request: request)
      lines.append("\(job.name):")
      lines.append("  " + words.map(ShellWords.quote).joined(separator: " "))
    }
    return lines
  }
}
