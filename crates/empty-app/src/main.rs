//! An empty Tauri 2 app: one window showing a hello-world page, nothing else. It exists to be
//! measured: `vitaltrends-bench desktop` reports the VitalTrends app's memory as a ratio to this.

fn main() {
    tauri::Builder::default()
        .run(tauri::generate_context!())
        .expect("the empty app runs");
}
