/// File names inside a job's directory, shared by the wrapper, both backends and the
/// log follower.
public enum JobFiles {
  /// The batch script sbatch runs: it runs the staged CI script and writes the status files.
  public static func wrapper(in directory: String) -> String { "\(directory)/wrapper.sh" }
  /// The runner's stage script, staged for the wrapper (or for bash, for a local stage).
  public static func stageScript(in directory: String) -> String { "\(directory)/script.sh" }
  public static func output(in directory: String, task: Int, isArray: Bool) -> String {
    isArray ? "\(directory)/output-\(task).log" : "\(directory)/output.log"
  }
  /// Slurm's `--output` pattern for the same files.
  public static func outputPattern(in directory: String, isArray: Bool) -> String {
    isArray ? "\(directory)/output-%a.log" : "\(directory)/output.log"
  }
  public static func status(in directory: String, task: Int, isArray: Bool) -> String {
    isArray ? "\(directory)/status-\(task)" : "\(directory)/status"
  }
}
