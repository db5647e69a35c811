//! The study's generators: drawn ones on the textures, EL ones on the ELPV
//! cells, one type for both.

use spanwatch_synth::defects::Generator;
use spanwatch_synth::el_defects::ElGenerator;

/// A generator of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StudyGenerator {
    /// A drawn-defect generator (brick, grass, gravel).
    Drawn(Generator),
    /// An EL generator (ELPV cells).
    El(ElGenerator),
}

/// The generators every surface has, which the structural checks and the
/// stream experiment single out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// The real defects' family and ranges.
    Faithful,
    /// A brightness and contrast change, no defect.
    Photometric,
    /// Pixel noise, no defect.
    Noise,
    /// The source unchanged.
    Copy,
}

impl StudyGenerator {
    /// Its name in the study's outputs.
    pub fn name(&self) -> String {
        match self {
            StudyGenerator::Drawn(g) => g.name(),
            StudyGenerator::El(g) => g.name(),
        }
    }

    /// Which reference generator it is, if any.
    pub fn reference(&self) -> Option<Reference> {
        match self {
            StudyGenerator::Drawn(Generator::Faithful) | StudyGenerator::El(ElGenerator::Faithful) => Some(Reference::Faithful),
            StudyGenerator::Drawn(Generator::Photometric) | StudyGenerator::El(ElGenerator::Photometric) => Some(Reference::Photometric),
            StudyGenerator::Drawn(Generator::Noise) | StudyGenerator::El(ElGenerator::Noise) => Some(Reference::Noise),
            StudyGenerator::Drawn(Generator::Copy) | StudyGenerator::El(ElGenerator::Copy) => Some(Reference::Copy),
            _ => None,
        }
    }
}

impl std::fmt::Display for StudyGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}
