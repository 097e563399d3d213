/// The sbatch command line for one batch script: the driver's fixed options, then the
/// request's own. Pure, so `ci-gen explain` prints exactly what the Slurm backend runs.
public enum SbatchCommand {
  /// `directory` is where the tasks' output files go (`JobFiles`); the job starts in
  /// `workingDirectory`.
  public static func arguments(
    jobName: String, script: String, directory: String, workingDirectory: String, request: JobRequest
  ) -> [String] {
    [
      "sbatch", "--parsable",
      "--job-name=\(jobName)",
      "--output=\(JobFiles.outputPattern(in: directory, isArray: request.has("array")))",
      "--chdir=\(workingDirectory)",
      // The environment sbatch sees is already sanitised (no CI variables).
      "--export=ALL",
      // A requeue would run the CI script twice into the same log.
      "--no-requeue",
    ] + request.arguments + [script]
  }
}
