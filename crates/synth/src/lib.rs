//! spanwatch-synth: the synthetic defects spanwatch is measured on, apart
//! from the CLI users install (which compiles none of this).
//!
//! [`defects`] draws defect families on real surface tiles and grades
//! generators in fidelity; [`el_defects`] renders defects of solar-cell EL
//! images; [`synthesis`] holds the methods practitioners run (CutPaste,
//! CutPaste-scar, DRAEM-style masks, NSA Poisson blending, transplant);
//! [`demo_data`] builds the bundled demo dataset from them. The demo, the
//! validation study (the CLI's feature `study`) and the tests use it.
#![warn(missing_docs)]

pub mod defects;
pub mod demo_data;
pub mod el_defects;
pub mod synthesis;
