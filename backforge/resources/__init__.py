"""Resources: `backforge add resource`, `backforge resources`, and what `backforge update` needs
to update each resource (a second Copier template, one answers file per resource).

spec.py (field specs), naming.py and sql_words.py (name rules) and project.py (a project read
statically) are leaves; template.py prepares the resource template; add.py checks and renders.
"""
