"""Rori's channel ablations (paper 4.5, Figure 7), defined once.

Each ablation trains Rori on a subset of the five feature channels; its config
variant word (`configs/rori.py:demo,ablation_spec`), the Table 2 / Figure 7 row name
and the Figure 7 label all come from here.
"""

# variant word -> (feature channels, row name, Figure 7 label).
ABLATIONS = {
    "ablation_spec": (("spec",), "rori_spec", "Spec"),
    "ablation_spec_f0": (("spec", "f0"), "rori_spec_f0", "Spec+f0"),
    "ablation_spec_f0_chroma": (("spec", "f0", "chroma"), "rori_spec_f0_chroma",
                                "Spec+f0+chroma"),
}
# Figure 7's bars in order: the ablation rows, then full Rori (all 5 channels).
FIGURE7_ROWS = (*(row for _, row, _ in ABLATIONS.values()), "rori")
FIGURE7_LABELS = {**{row: label for _, row, label in ABLATIONS.values()},
                  "rori": "All 5"}
# Table 2 "Configuration" labels of the ablation rows.
DISPLAY_NAMES = {row: f"Rori, {label}" for _, row, label in ABLATIONS.values()}
