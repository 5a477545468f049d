#!/usr/bin/env cwl-runner
# Alignment QC of one BAM/CRAM: samtools stats and samtools flagstat.
cwlVersion: v1.2
class: Workflow
label: alignment QC (samtools stats + flagstat)
requirements:
  InlineJavascriptRequirement: {}
inputs:
  alignments:
    type: File
    label: BAM or CRAM file
  reference:
    type: File?
    label: reference FASTA (needed for CRAM)
outputs:
  stats_report:
    type: File
    outputSource: stats/report
  flagstat_report:
    type: File
    outputSource: flagstat/report
steps:
  stats:
    run:
      class: CommandLineTool
      hints:
        DockerRequirement: {dockerPull: "quay.io/biocontainers/samtools:1.21--h50ea8bc_0"}
      baseCommand: [samtools, stats]
      inputs:
        alignments: {type: File, inputBinding: {position: 2}}
        reference: {type: File?, inputBinding: {position: 1, prefix: --reference}}
      outputs:
        report: {type: stdout}
      stdout: $(inputs.alignments.nameroot).stats.txt
    in: {alignments: alignments, reference: reference}
    out: [report]
  flagstat:
    run:
      class: CommandLineTool
      hints:
        DockerRequirement: {dockerPull: "quay.io/biocontainers/samtools:1.21--h50ea8bc_0"}
      baseCommand: [samtools, flagstat]
      inputs:
        alignments: {type: File, inputBinding: {position: 1}}
      outputs:
        report: {type: stdout}
      stdout: $(inputs.alignments.nameroot).flagstat.txt
    in: {alignments: alignments}
    out: [report]
