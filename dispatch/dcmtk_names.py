"""The names DCMTK gives UIDs, where they differ from pydicom's keywords.

DCMTK's profile files (``-xf``) name transfer syntaxes and SOP classes as DCMTK's UID
dictionary does (``LittleEndianExplicit``, ``JPEGLossless:Non-hierarchical-1stOrderPrediction``,
``RETIRED_StandaloneCurveStorage``). Most SOP class names equal pydicom's UID keywords
but for case (``MultiframeTrueColorSecondaryCaptureImageStorage`` against pydicom's
``MultiFrame...``), so :func:`uid_for_name` compares case-insensitively against
pydicom's keywords and this table of the names that differ otherwise: DCMTK 3.6.7's
names of transfer syntaxes and (meta) SOP classes, and the transfer syntax names DCMTK
3.7 added (``EncapsulatedUncompressedLittleEndianExplicit``, the high-throughput JPEG
2000 and fragmentable MPEG names, ``LocalEndianExplicit`` / ``OppositeEndianExplicit``).
"""

from __future__ import annotations

from functools import cache

#: DCMTK name -> UID, for the names that differ from pydicom's keywords beyond case.
DCMTK_NAMES: dict[str, str] = {
    "VerificationSOPClass": "1.2.840.10008.1.1",
    "LittleEndianImplicit": "1.2.840.10008.1.2",
    "LittleEndianExplicit": "1.2.840.10008.1.2.1",
    "LocalEndianExplicit": "1.2.840.10008.1.2.1",
    "EncapsulatedUncompressedLittleEndianExplicit": "1.2.840.10008.1.2.1.98",
    "DeflatedLittleEndianExplicit": "1.2.840.10008.1.2.1.99",
    "BigEndianExplicit": "1.2.840.10008.1.2.2",
    "OppositeEndianExplicit": "1.2.840.10008.1.2.2",
    "JPEGBaseline": "1.2.840.10008.1.2.4.50",
    "JPEGExtended:Process2+4": "1.2.840.10008.1.2.4.51",
    "JPEGExtended:Process3+5": "1.2.840.10008.1.2.4.52",
    "JPEGSpectralSelection:Non-hierarchical:Process6+8": "1.2.840.10008.1.2.4.53",
    "JPEGSpectralSelection:Non-hierarchical:Process7+9": "1.2.840.10008.1.2.4.54",
    "JPEGFullProgression:Non-hierarchical:Process10+12": "1.2.840.10008.1.2.4.55",
    "JPEGFullProgression:Non-hierarchical:Process11+13": "1.2.840.10008.1.2.4.56",
    "JPEGLossless:Non-hierarchical:Process14": "1.2.840.10008.1.2.4.57",
    "JPEGLossless:Non-hierarchical:Process15": "1.2.840.10008.1.2.4.58",
    "JPEGExtended:Hierarchical:Process16+18": "1.2.840.10008.1.2.4.59",
    "JPEGExtended:Hierarchical:Process17+19": "1.2.840.10008.1.2.4.60",
    "JPEGSpectralSelection:Hierarchical:Process20+22": "1.2.840.10008.1.2.4.61",
    "JPEGSpectralSelection:Hierarchical:Process21+23": "1.2.840.10008.1.2.4.62",
    "JPEGFullProgression:Hierarchical:Process24+26": "1.2.840.10008.1.2.4.63",
    "JPEGFullProgression:Hierarchical:Process25+27": "1.2.840.10008.1.2.4.64",
    "JPEGLossless:Hierarchical:Process28": "1.2.840.10008.1.2.4.65",
    "JPEGLossless:Hierarchical:Process29": "1.2.840.10008.1.2.4.66",
    "JPEGLossless:Non-hierarchical-1stOrderPrediction": "1.2.840.10008.1.2.4.70",
    "JPEGLSLossy": "1.2.840.10008.1.2.4.81",
    "JPEG2000LosslessOnly": "1.2.840.10008.1.2.4.90",
    "JPEG2000MulticomponentLosslessOnly": "1.2.840.10008.1.2.4.92",
    "JPEG2000Multicomponent": "1.2.840.10008.1.2.4.93",
    "MPEG2MainProfile@MainLevel": "1.2.840.10008.1.2.4.100",
    "FragmentableMPEG2MainProfile/MainLevel": "1.2.840.10008.1.2.4.100.1",
    "MPEG2MainProfile@HighLevel": "1.2.840.10008.1.2.4.101",
    "FragmentableMPEG2MainProfile/HighLevel": "1.2.840.10008.1.2.4.101.1",
    "MPEG4HighProfile/Level4.1": "1.2.840.10008.1.2.4.102",
    "FragmentableMPEG4HighProfile/Level4.1": "1.2.840.10008.1.2.4.102.1",
    "MPEG4BDcompatibleHighProfile/Level4.1": "1.2.840.10008.1.2.4.103",
    "FragmentableMPEG4BDcompatibleHighProfile/Level4.1": "1.2.840.10008.1.2.4.103.1",
    "MPEG4HighProfile/Level4.2For2DVideo": "1.2.840.10008.1.2.4.104",
    "FragmentableMPEG4HighProfile/Level4.2For2DVideo": "1.2.840.10008.1.2.4.104.1",
    "MPEG4HighProfile/Level4.2For3DVideo": "1.2.840.10008.1.2.4.105",
    "FragmentableMPEG4HighProfile/Level4.2For3DVideo": "1.2.840.10008.1.2.4.105.1",
    "MPEG4StereoHighProfile/Level4.2": "1.2.840.10008.1.2.4.106",
    "FragmentableMPEG4StereoHighProfile/Level4.2": "1.2.840.10008.1.2.4.106.1",
    "HEVCMainProfile/Level5.1": "1.2.840.10008.1.2.4.107",
    "HEVCMain10Profile/Level5.1": "1.2.840.10008.1.2.4.108",
    "HighThroughputJPEG2000ImageCompressionLosslessOnly": "1.2.840.10008.1.2.4.201",
    "HighThroughputJPEG2000withRPCLOptionsImageCompressionLosslessOnly": "1.2.840.10008.1.2.4.202",
    "HighThroughputJPEG2000ImageCompression": "1.2.840.10008.1.2.4.203",
    "SMPTEST2110-20:UncompressedProgressiveActiveVideo": "1.2.840.10008.1.2.7.1",
    "SMPTEST2110-20:UncompressedInterlacedActiveVideo": "1.2.840.10008.1.2.7.2",
    "SMPTEST2110-30:PCMDigitalAudio": "1.2.840.10008.1.2.7.3",
    "RETIRED_BasicStudyContentNotificationSOPClass": "1.2.840.10008.1.9",
    "StorageCommitmentPushModelSOPClass": "1.2.840.10008.1.20.1",
    "RETIRED_StorageCommitmentPullModelSOPClass": "1.2.840.10008.1.20.2",
    "ProceduralEventLoggingSOPClass": "1.2.840.10008.1.40",
    "SubstanceAdministrationLoggingSOPClass": "1.2.840.10008.1.42",
    "RETIRED_DetachedPatientManagementSOPClass": "1.2.840.10008.3.1.2.1.1",
    "RETIRED_DetachedPatientManagementMetaSOPClass": "1.2.840.10008.3.1.2.1.4",
    "RETIRED_DetachedVisitManagementSOPClass": "1.2.840.10008.3.1.2.2.1",
    "RETIRED_DetachedStudyManagementSOPClass": "1.2.840.10008.3.1.2.3.1",
    "RETIRED_StudyComponentManagementSOPClass": "1.2.840.10008.3.1.2.3.2",
    "ModalityPerformedProcedureStepSOPClass": "1.2.840.10008.3.1.2.3.3",
    "ModalityPerformedProcedureStepRetrieveSOPClass": "1.2.840.10008.3.1.2.3.4",
    "ModalityPerformedProcedureStepNotificationSOPClass": "1.2.840.10008.3.1.2.3.5",
    "RETIRED_DetachedResultsManagementSOPClass": "1.2.840.10008.3.1.2.5.1",
    "RETIRED_DetachedResultsManagementMetaSOPClass": "1.2.840.10008.3.1.2.5.4",
    "RETIRED_DetachedStudyManagementMetaSOPClass": "1.2.840.10008.3.1.2.5.5",
    "RETIRED_DetachedInterpretationManagementSOPClass": "1.2.840.10008.3.1.2.6.1",
    "BasicFilmSessionSOPClass": "1.2.840.10008.5.1.1.1",
    "BasicFilmBoxSOPClass": "1.2.840.10008.5.1.1.2",
    "BasicGrayscaleImageBoxSOPClass": "1.2.840.10008.5.1.1.4",
    "BasicColorImageBoxSOPClass": "1.2.840.10008.5.1.1.4.1",
    "RETIRED_ReferencedImageBoxSOPClass": "1.2.840.10008.5.1.1.4.2",
    "BasicGrayscalePrintManagementMetaSOPClass": "1.2.840.10008.5.1.1.9",
    "RETIRED_ReferencedGrayscalePrintManagementMetaSOPClass": "1.2.840.10008.5.1.1.9.1",
    "PrintJobSOPClass": "1.2.840.10008.5.1.1.14",
    "BasicAnnotationBoxSOPClass": "1.2.840.10008.5.1.1.15",
    "PrinterSOPClass": "1.2.840.10008.5.1.1.16",
    "PrinterConfigurationRetrievalSOPClass": "1.2.840.10008.5.1.1.16.376",
    "BasicColorPrintManagementMetaSOPClass": "1.2.840.10008.5.1.1.18",
    "RETIRED_ReferencedColorPrintManagementMetaSOPClass": "1.2.840.10008.5.1.1.18.1",
    "VOILUTBoxSOPClass": "1.2.840.10008.5.1.1.22",
    "PresentationLUTSOPClass": "1.2.840.10008.5.1.1.23",
    "RETIRED_ImageOverlayBoxSOPClass": "1.2.840.10008.5.1.1.24",
    "RETIRED_BasicPrintImageOverlayBoxSOPClass": "1.2.840.10008.5.1.1.24.1",
    "RETIRED_PrintQueueManagementSOPClass": "1.2.840.10008.5.1.1.26",
    "RETIRED_StoredPrintStorage": "1.2.840.10008.5.1.1.27",
    "RETIRED_HardcopyGrayscaleImageStorage": "1.2.840.10008.5.1.1.29",
    "RETIRED_HardcopyColorImageStorage": "1.2.840.10008.5.1.1.30",
    "RETIRED_PullPrintRequestSOPClass": "1.2.840.10008.5.1.1.31",
    "RETIRED_PullStoredPrintManagementMetaSOPClass": "1.2.840.10008.5.1.1.32",
    "MediaCreationManagementSOPClass": "1.2.840.10008.5.1.1.33",
    "DisplaySystemSOPClass": "1.2.840.10008.5.1.1.40",
    "RETIRED_UltrasoundMultiframeImageStorage": "1.2.840.10008.5.1.4.1.1.3",
    "RETIRED_NuclearMedicineImageStorage": "1.2.840.10008.5.1.4.1.1.5",
    "RETIRED_UltrasoundImageStorage": "1.2.840.10008.5.1.4.1.1.6",
    "RETIRED_StandaloneOverlayStorage": "1.2.840.10008.5.1.4.1.1.8",
    "RETIRED_StandaloneCurveStorage": "1.2.840.10008.5.1.4.1.1.9",
    "DRAFT_WaveformStorage": "1.2.840.10008.5.1.4.1.1.9.1",
    "RETIRED_StandaloneModalityLUTStorage": "1.2.840.10008.5.1.4.1.1.10",
    "RETIRED_StandaloneVOILUTStorage": "1.2.840.10008.5.1.4.1.1.11",
    "RETIRED_XRayAngiographicBiPlaneImageStorage": "1.2.840.10008.5.1.4.1.1.12.3",
    "RETIRED_VLImageStorage": "1.2.840.10008.5.1.4.1.1.77.1",
    "RETIRED_VLMultiframeImageStorage": "1.2.840.10008.5.1.4.1.1.77.2",
    "DRAFT_SRTextStorage": "1.2.840.10008.5.1.4.1.1.88.1",
    "DRAFT_SRAudioStorage": "1.2.840.10008.5.1.4.1.1.88.2",
    "DRAFT_SRDetailStorage": "1.2.840.10008.5.1.4.1.1.88.3",
    "DRAFT_SRComprehensiveStorage": "1.2.840.10008.5.1.4.1.1.88.4",
    "ImplantationPlanSRDocumentStorage": "1.2.840.10008.5.1.4.1.1.88.70",
    "RETIRED_StandalonePETCurveStorage": "1.2.840.10008.5.1.4.1.1.129",
    "FINDProtocolApprovalInformationModel": "1.2.840.10008.5.1.4.1.1.200.4",
    "MOVEProtocolApprovalInformationModel": "1.2.840.10008.5.1.4.1.1.200.5",
    "GETProtocolApprovalInformationModel": "1.2.840.10008.5.1.4.1.1.200.6",
    "DICOS_CTImageStorage": "1.2.840.10008.5.1.4.1.1.501.1",
    "DICOS_DigitalXRayImageStorageForPresentation": "1.2.840.10008.5.1.4.1.1.501.2.1",
    "DICOS_DigitalXRayImageStorageForProcessing": "1.2.840.10008.5.1.4.1.1.501.2.2",
    "DICOS_ThreatDetectionReportStorage": "1.2.840.10008.5.1.4.1.1.501.3",
    "DICOS_2DAITStorage": "1.2.840.10008.5.1.4.1.1.501.4",
    "DICOS_3DAITStorage": "1.2.840.10008.5.1.4.1.1.501.5",
    "DICOS_QuadrupoleResonanceStorage": "1.2.840.10008.5.1.4.1.1.501.6",
    "DICONDE_EddyCurrentImageStorage": "1.2.840.10008.5.1.4.1.1.601.1",
    "DICONDE_EddyCurrentMultiframeImageStorage": "1.2.840.10008.5.1.4.1.1.601.2",
    "FINDPatientRootQueryRetrieveInformationModel": "1.2.840.10008.5.1.4.1.2.1.1",
    "MOVEPatientRootQueryRetrieveInformationModel": "1.2.840.10008.5.1.4.1.2.1.2",
    "GETPatientRootQueryRetrieveInformationModel": "1.2.840.10008.5.1.4.1.2.1.3",
    "FINDStudyRootQueryRetrieveInformationModel": "1.2.840.10008.5.1.4.1.2.2.1",
    "MOVEStudyRootQueryRetrieveInformationModel": "1.2.840.10008.5.1.4.1.2.2.2",
    "GETStudyRootQueryRetrieveInformationModel": "1.2.840.10008.5.1.4.1.2.2.3",
    "RETIRED_FINDPatientStudyOnlyQueryRetrieveInformationModel": "1.2.840.10008.5.1.4.1.2.3.1",
    "RETIRED_MOVEPatientStudyOnlyQueryRetrieveInformationModel": "1.2.840.10008.5.1.4.1.2.3.2",
    "RETIRED_GETPatientStudyOnlyQueryRetrieveInformationModel": "1.2.840.10008.5.1.4.1.2.3.3",
    "MOVECompositeInstanceRootRetrieve": "1.2.840.10008.5.1.4.1.2.4.2",
    "GETCompositeInstanceRootRetrieve": "1.2.840.10008.5.1.4.1.2.4.3",
    "GETCompositeInstanceRetrieveWithoutBulkData": "1.2.840.10008.5.1.4.1.2.5.3",
    "FINDDefinedProcedureProtocolInformationModel": "1.2.840.10008.5.1.4.20.1",
    "MOVEDefinedProcedureProtocolInformationModel": "1.2.840.10008.5.1.4.20.2",
    "GETDefinedProcedureProtocolInformationModel": "1.2.840.10008.5.1.4.20.3",
    "FINDModalityWorklistInformationModel": "1.2.840.10008.5.1.4.31",
    "RETIRED_GeneralPurposeWorklistManagementMetaSOPClass": "1.2.840.10008.5.1.4.32",
    "RETIRED_FINDGeneralPurposeWorklistInformationModel": "1.2.840.10008.5.1.4.32.1",
    "RETIRED_GeneralPurposeScheduledProcedureStepSOPClass": "1.2.840.10008.5.1.4.32.2",
    "RETIRED_GeneralPurposePerformedProcedureStepSOPClass": "1.2.840.10008.5.1.4.32.3",
    "InstanceAvailabilityNotificationSOPClass": "1.2.840.10008.5.1.4.33",
    "DRAFT_RTBeamsDeliveryInstructionStorage": "1.2.840.10008.5.1.4.34.1",
    "DRAFT_RTConventionalMachineVerification": "1.2.840.10008.5.1.4.34.2",
    "DRAFT_RTIonMachineVerification": "1.2.840.10008.5.1.4.34.3",
    "DRAFT_UnifiedProcedureStepPushSOPClass": "1.2.840.10008.5.1.4.34.4.1",
    "DRAFT_UnifiedProcedureStepWatchSOPClass": "1.2.840.10008.5.1.4.34.4.2",
    "DRAFT_UnifiedProcedureStepPullSOPClass": "1.2.840.10008.5.1.4.34.4.3",
    "DRAFT_UnifiedProcedureStepEventSOPClass": "1.2.840.10008.5.1.4.34.4.4",
    "UnifiedProcedureStepPushSOPClass": "1.2.840.10008.5.1.4.34.6.1",
    "UnifiedProcedureStepWatchSOPClass": "1.2.840.10008.5.1.4.34.6.2",
    "UnifiedProcedureStepPullSOPClass": "1.2.840.10008.5.1.4.34.6.3",
    "UnifiedProcedureStepEventSOPClass": "1.2.840.10008.5.1.4.34.6.4",
    "UnifiedProcedureStepQuerySOPClass": "1.2.840.10008.5.1.4.34.6.5",
    "FINDHangingProtocolInformationModel": "1.2.840.10008.5.1.4.38.2",
    "MOVEHangingProtocolInformationModel": "1.2.840.10008.5.1.4.38.3",
    "FINDColorPaletteInformationModel": "1.2.840.10008.5.1.4.39.2",
    "MOVEColorPaletteInformationModel": "1.2.840.10008.5.1.4.39.3",
    "GETColorPaletteInformationModel": "1.2.840.10008.5.1.4.39.4",
    "ProductCharacteristicsQuerySOPClass": "1.2.840.10008.5.1.4.41",
    "SubstanceApprovalQuerySOPClass": "1.2.840.10008.5.1.4.42",
    "FINDGenericImplantTemplateInformationModel": "1.2.840.10008.5.1.4.43.2",
    "MOVEGenericImplantTemplateInformationModel": "1.2.840.10008.5.1.4.43.3",
    "GETGenericImplantTemplateInformationModel": "1.2.840.10008.5.1.4.43.4",
    "FINDImplantAssemblyTemplateInformationModel": "1.2.840.10008.5.1.4.44.2",
    "MOVEImplantAssemblyTemplateInformationModel": "1.2.840.10008.5.1.4.44.3",
    "GETImplantAssemblyTemplateInformationModel": "1.2.840.10008.5.1.4.44.4",
    "FINDImplantTemplateGroupInformationModel": "1.2.840.10008.5.1.4.45.2",
    "MOVEImplantTemplateGroupInformationModel": "1.2.840.10008.5.1.4.45.3",
    "GETImplantTemplateGroupInformationModel": "1.2.840.10008.5.1.4.45.4",
}

_TRANSFER_SYNTAX = "Transfer Syntax"
_ABSTRACT_TYPES = frozenset({"SOP Class", "Meta SOP Class"})


@cache
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    """(transfer syntax names, abstract syntax names), keys lower-cased."""
    from pydicom._uid_dict import UID_dictionary

    syntaxes: dict[str, str] = {}
    abstract: dict[str, str] = {}
    for uid, entry in UID_dictionary.items():
        kind, keyword = entry[1], entry[4]
        if not keyword:
            continue
        if kind == _TRANSFER_SYNTAX:
            syntaxes[keyword.lower()] = uid
        elif kind in _ABSTRACT_TYPES:
            abstract[keyword.lower()] = uid
    for name, uid in DCMTK_NAMES.items():
        known = UID_dictionary.get(uid)
        table = syntaxes if known is not None and known[1] == _TRANSFER_SYNTAX else abstract
        table[name.lower()] = uid
    return syntaxes, abstract


def uid_for_name(name: str, *, transfer_syntax: bool) -> str | None:
    """The UID a DCMTK name (or pydicom keyword) stands for, or None when unknown.

    A leading ``=`` (how DCMTK prints a named UID) is ignored; case is not significant.
    ``transfer_syntax`` chooses the table: transfer syntaxes, or SOP classes.
    """
    syntaxes, abstract = _tables()
    key = name.removeprefix("=").lower()
    return (syntaxes if transfer_syntax else abstract).get(key)


# DCMTK 3.6.7 spells these four SOP classes "Multiframe..." where pydicom has "MultiFrame...".
_CASE_DIFFERS = {
    "1.2.840.10008.5.1.4.1.1.7.1": "MultiframeSingleBitSecondaryCaptureImageStorage",
    "1.2.840.10008.5.1.4.1.1.7.2": "MultiframeGrayscaleByteSecondaryCaptureImageStorage",
    "1.2.840.10008.5.1.4.1.1.7.3": "MultiframeGrayscaleWordSecondaryCaptureImageStorage",
    "1.2.840.10008.5.1.4.1.1.7.4": "MultiframeTrueColorSecondaryCaptureImageStorage",
}


@cache
def _names_by_uid() -> dict[str, str]:
    from pydicom._uid_dict import UID_dictionary

    names = {uid: entry[4] for uid, entry in UID_dictionary.items() if entry[4]}
    names.update(_CASE_DIFFERS)
    seen: set[str] = set()
    for name, uid in DCMTK_NAMES.items():
        if uid not in seen:  # the first name of a UID is DCMTK 3.6.7's own
            seen.add(uid)
            names[uid] = name
    return names


def name_of_uid(uid: str) -> str | None:
    """The name DCMTK prints for ``uid`` (``CTImageStorage``, ``LittleEndianExplicit``),
    or None for a UID without a name (DCMTK then prints the UID itself).

    DCMTK 3.6.7's names where they differ from pydicom's keywords; pydicom's keyword
    otherwise, so a SOP class newer than DCMTK 3.6.7 is named where DCMTK would show
    its number."""
    return _names_by_uid().get(uid)


TRANSFER_SYNTAX_TITLES: dict[str, str] = {
    "1.2.840.10008.1.2": "Little Endian Implicit",
    "1.2.840.10008.1.2.1": "Little Endian Explicit",
    "1.2.840.10008.1.2.2": "Big Endian Explicit",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended, Process 2+4",
    "1.2.840.10008.1.2.4.52": "JPEG Extended, Process 3+5",
    "1.2.840.10008.1.2.4.53": "JPEG Spectral Selection, Non-hierarchical, Process 6+8",
    "1.2.840.10008.1.2.4.54": "JPEG Spectral Selection, Non-hierarchical, Process 7+9",
    "1.2.840.10008.1.2.4.55": "JPEG Full Progression, Non-hierarchical, Process 10+12",
    "1.2.840.10008.1.2.4.56": "JPEG Full Progression, Non-hierarchical, Process 11+13",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless, Non-hierarchical, Process 14",
    "1.2.840.10008.1.2.4.58": "JPEG Lossless, Non-hierarchical, Process 15",
    "1.2.840.10008.1.2.4.59": "JPEG Extended, Hierarchical, Process 16+18",
    "1.2.840.10008.1.2.4.60": "JPEG Extended, Hierarchical, Process 17+19",
    "1.2.840.10008.1.2.4.61": "JPEG Spectral Selection, Hierarchical, Process 20+22",
    "1.2.840.10008.1.2.4.62": "JPEG Spectral Selection, Hierarchical, Process 21+23",
    "1.2.840.10008.1.2.4.63": "JPEG Full Progression, Hierarchical, Process 24+26",
    "1.2.840.10008.1.2.4.64": "JPEG Full Progression, Hierarchical, Process 25+27",
    "1.2.840.10008.1.2.4.65": "JPEG Lossless, Hierarchical, Process 28",
    "1.2.840.10008.1.2.4.66": "JPEG Lossless, Hierarchical, Process 29",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless, Non-hierarchical, 1st Order Prediction",
    "1.2.840.10008.1.2.5": "RLE Lossless",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Lossy (Near-lossless)",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 (Lossless only)",
    "1.2.840.10008.1.2.4.91": "JPEG 2000 (Lossless or Lossy)",
    "1.2.840.10008.1.2.4.92": "JPEG 2000 Part 2 Multicomponent Image Compression (Lossless only)",
    "1.2.840.10008.1.2.4.93": (
        "JPEG 2000 Part 2 Multicomponent Image Compression (Lossless or Lossy)"
    ),
    "1.2.840.10008.1.2.4.94": "JPIP Referenced",
    "1.2.840.10008.1.2.4.95": "JPIP Referenced Deflate",
    "1.2.840.10008.1.2.4.100": "MPEG2 Main Profile @ Main Level",
    "1.2.840.10008.1.2.4.101": "MPEG2 Main Profile @ High Level",
    "1.2.840.10008.1.2.4.102": "MPEG-4 AVC/H.264 High Profile / Level 4.1",
    "1.2.840.10008.1.2.4.103": "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
    "1.2.840.10008.1.2.4.104": "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
    "1.2.840.10008.1.2.4.105": "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
    "1.2.840.10008.1.2.4.106": "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
    "1.2.840.10008.1.2.4.107": "HEVC/H.265 Main Profile / Level 5.1",
    "1.2.840.10008.1.2.4.108": "HEVC/H.265 Main 10 Profile / Level 5.1",
}
"""How DCMTK 3.6.7 titles each transfer syntax in its messages (``DcmXfer``'s names:
"Converting transfer syntax: Little Endian Explicit -> JPEG Baseline")."""


def transfer_syntax_title(uid: str) -> str:
    """DCMTK's title of transfer syntax ``uid`` ("Unknown Transfer Syntax" for others)."""
    return TRANSFER_SYNTAX_TITLES.get(uid, "Unknown Transfer Syntax")
