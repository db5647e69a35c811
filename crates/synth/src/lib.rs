//! spanwatch-synth: the synthetic defects spanwatch is measured on, and the
//! defect synthesis methods users run with `spanwatch synthesize`.
//!
//! [`defects`] draws defect families on real surface tiles and grades
//! generators in fidelity; [`el_defects`] renders defects of solar-cell EL
//! images; [`synthesis`] holds the methods practitioners run (CutPaste,
//! CutPaste-scar, DRAEM-style masks, NSA Poisson blending, transplant);
//! [`demo_data`] builds the bundled demo dataset from them. [`method`]
//! applies those methods to users' images (grey or colour, any size) and
//! [`write_set`] writes a dataset's synthetic set with them: the CLI's
//! `spanwatch synthesize`.
#![warn(missing_docs)]

pub mod defects;
pub mod demo_data;
pub mod el_defects;
pub mod method;
pub mod synthesis;
pub mod write_set;
